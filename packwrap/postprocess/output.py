"""Where a post-processor writes: its `output` template rendered with Packer's fields,
relative to the working directory, and never over an existing file without -force."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.errors import PackwrapError

if TYPE_CHECKING:
    from packwrap.build.artifact import Artifact
    from packwrap.postprocess.base import PPContext


def output_path(
    template: str, artifact: Artifact, ctx: PPContext, what: str, **fields: object
) -> Path:
    """`template` rendered with the artifact's generated data, BuildName, BuilderType and
    `fields`; an existing file is an error unless -force."""
    from packwrap.build.bootcommand import render

    data: dict[str, object] = dict(artifact.state.get("generated_data") or {})
    data.update(BuildName=ctx.build_name, BuilderType=ctx.builder_type, **fields)
    target = Path(render(template, data, what=f"{what} output"))
    if not target.is_absolute():
        target = ctx.cwd / target
    if target.exists() and not ctx.force:
        raise PackwrapError(f"{what}: {target} already exists (use -force to replace it)")
    return target
