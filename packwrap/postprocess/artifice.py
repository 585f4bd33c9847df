"""The artifice post-processor: the artifact becomes the files named in `files` (Packer's
artifice: hashicorp/packer post-processor/artifice, read at commit 00188667).

Each `files` entry is a glob pattern, relative to the working directory; the new artifact
(BuilderId packer.post-processor.artifice, Id "", no generated data) lists every match.
The input artifact is kept by default; with `keep_input_artifact = false` its files are
deleted after the chain, as Packer destroys it. Unlike Packer, a pattern that matches
nothing is an error (Packer silently drops it, and the chain then works on nothing).
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from packwrap.build.artifact import Artifact
from packwrap.config.schema import LIST, Config, Option, Schema
from packwrap.errors import PackwrapError

if TYPE_CHECKING:
    from packwrap.postprocess.base import PPContext

BUILDER_ID = "packer.post-processor.artifice"


def _check(config: Config, problem: Callable[[str, str | None], None]) -> None:
    if not config.files:
        problem('artifice: no files specified (files = ["..."])', "files")


class ArtificePostProcessor:
    type_name: ClassVar[str] = "artifice"
    force_keep: ClassVar[bool] = False
    schema: ClassVar[Schema] = Schema(
        [Option("files", LIST, required=True, help="the new artifact's files (globs)")],
        [_check],
    )

    def run(self, config: Config, artifact: Artifact, ctx: PPContext) -> tuple[Artifact, bool]:
        if artifact.files:
            ctx.ui.say(f"Discarding files from artifact: {', '.join(artifact.files)}")
        files: list[str] = []
        for pattern in config.files:
            matches = sorted(glob.glob(pattern, root_dir=ctx.cwd, include_hidden=True))
            if not matches:
                raise PackwrapError(f"artifice: no file matches {pattern!r} (in {ctx.cwd})")
            files += [m for m in matches if m not in files]
        ctx.ui.say(f"Using these artifact files: {', '.join(files)}")
        new = Artifact(
            builder_id=BUILDER_ID,
            id="",
            files=files,
            description="Created artifact from files: " + ", ".join(files),
        )
        return new, True
