"""The compress post-processor, with Packer's options and defaults (post-processor/compress
in hashicorp/packer): `output` (default `packer_{{.BuildName}}_{{.BuilderType}}`, a
gzipped tar as its name has no extension), `format` (the format as an extension, in
place of the name's), `compression_level` (1-9, default 6), `keep_input_artifact`
(default false). The formats are archive.py's.

The archive is written under a temporary name and renamed when whole: a failure or
Ctrl-C leaves no partial file, and an existing output is replaced only under -force.
The returned artifact (BuilderId packer.post-processor.compress) is the one archive.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from packwrap.build.artifact import Artifact
from packwrap.config.schema import INT, STRING, Option, Schema
from packwrap.postprocess.archive import compression_level, detect, write_archive
from packwrap.postprocess.base import PostProcessorConfig
from packwrap.postprocess.tools import missing_tool

if TYPE_CHECKING:
    from packwrap.postprocess.base import PPContext

BUILDER_ID = "packer.post-processor.compress"
DEFAULT_OUTPUT = "packer_{{.BuildName}}_{{.BuilderType}}"


class CompressConfig(PostProcessorConfig):
    output: str
    format: str
    compression_level: int | None


def _check(config: CompressConfig, problem: Callable[[str, str | None], None]) -> None:
    try:
        compression_level(config.compression_level)
    except ValueError as exc:
        problem(f"compression_level {config.compression_level}: {exc}", "compression_level")
    fmt = detect(config.output or DEFAULT_OUTPUT, config.format or "")
    for program in fmt.programs():
        reason = missing_tool(program)
        if reason:
            where = "format" if config.format else "output"
            problem(f"compress: {fmt.compression or fmt.archive} {reason}", where)


class CompressPostProcessor:
    type_name: ClassVar[str] = "compress"
    force_keep: ClassVar[bool] = False
    schema: ClassVar[Schema[CompressConfig]] = Schema(
        [
            Option("output", STRING, DEFAULT_OUTPUT),
            Option("format", STRING, ""),
            Option("compression_level", INT, None),
        ],
        [_check],
        CompressConfig,
    )

    def run(
        self, config: CompressConfig, artifact: Artifact, ctx: PPContext
    ) -> tuple[Artifact, bool]:
        from packwrap.atomicfile import atomic_output, with_umask
        from packwrap.postprocess.output import output_path

        template = config.output or DEFAULT_OUTPUT
        fmt = detect(template, config.format or "")
        target = output_path(template, artifact, ctx, "compress")
        files = [ctx.cwd / f for f in artifact.files]
        level = compression_level(config.compression_level)
        what = "post-processor 'compress'"
        ctx.ui.say(f"Compressing {len(files)} file(s) to {target}")
        with atomic_output(target, mode=with_umask(0o644)) as partial:
            write_archive(fmt, [Path(f) for f in files], partial, level, ctx, what)
        ctx.ui.message(f"Archive {target} completed")
        description = f"compressed artifacts in: {target}"  # Packer's String()
        compressed = Artifact(BUILDER_ID, "", [str(target)], description, dict(artifact.state))
        return compressed, False
