"""Where a post-processor writes: its `output` template rendered with Packer's fields,
relative to the working directory, and never over an existing file without -force."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.errors import PackwrapError

if TYPE_CHECKING:
    from packwrap.build.artifact import Artifact
    from packwrap.postprocess.base import PPContext


def render_output(
    template: str, artifact: Artifact, ctx: PPContext, what: str, **fields: object
) -> Path:
    """`template` rendered with the artifact's generated data, BuildName, BuilderType and
    `fields`, relative to the working directory."""
    from packwrap.build.bootcommand import render

    data: dict[str, object] = dict(artifact.state.get("generated_data") or {})
    data.update(BuildName=ctx.build_name, BuilderType=ctx.builder_type, **fields)
    target = Path(render(template, data, what=f"{what} output"))
    return target if target.is_absolute() else ctx.cwd / target


def output_path(
    template: str, artifact: Artifact, ctx: PPContext, what: str, **fields: object
) -> Path:
    """render_output's path for a new file: an existing one is an error unless -force."""
    target = render_output(template, artifact, ctx, what, **fields)
    if target.exists() and not ctx.force:
        raise PackwrapError(f"{what}: {target} already exists (use -force to replace it)")
    return target
