"""The vmdk post-processor (packwrap's own; Packer has none): the build's disk converted
with `qemu-img convert -O vmdk -o subformat=...`, stream-optimized by default, the form
AWS VM Import and VMware's OVF tools take. Options: `output` (default
`packer_{{.BuildName}}_{{.BuilderType}}.vmdk`), `subformat` (streamOptimized or
monolithicSparse: the single-file ones), `keep_input_artifact` (default false, as
compress). Written under a temporary name and renamed when whole; an existing output
is replaced only under -force.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from packwrap.build.artifact import Artifact
from packwrap.config.schema import STRING, Option, Schema
from packwrap.postprocess.base import PostProcessorConfig
from packwrap.postprocess.tools import missing_tool

if TYPE_CHECKING:
    from packwrap.postprocess.base import PPContext

BUILDER_ID = "packwrap.post-processor.vmdk"
DEFAULT_OUTPUT = "packer_{{.BuildName}}_{{.BuilderType}}.vmdk"
SUBFORMATS = ("streamOptimized", "monolithicSparse")


class VmdkConfig(PostProcessorConfig):
    output: str
    subformat: str


def _check(config: VmdkConfig, problem: Callable[[str, str | None], None]) -> None:
    reason = missing_tool("qemu-img")
    if reason:
        problem(f"vmdk: {reason}", None)


class VmdkPostProcessor:
    type_name: ClassVar[str] = "vmdk"
    force_keep: ClassVar[bool] = False
    schema: ClassVar[Schema[VmdkConfig]] = Schema(
        [
            Option("output", STRING, DEFAULT_OUTPUT),
            Option("subformat", STRING, "streamOptimized", choices=SUBFORMATS),
        ],
        [_check],
        VmdkConfig,
    )

    def run(self, config: VmdkConfig, artifact: Artifact, ctx: PPContext) -> tuple[Artifact, bool]:
        from packwrap.atomicfile import atomic_output, with_umask
        from packwrap.postprocess.output import output_path
        from packwrap.postprocess.tools import artifact_disk, convert_image

        what = "post-processor 'vmdk'"
        target = output_path(config.output or DEFAULT_OUTPUT, artifact, ctx, "vmdk")
        disk = ctx.cwd / artifact_disk(artifact, what)
        ctx.ui.say(f"Converting {disk} to a {config.subformat} VMDK: {target}")
        with atomic_output(target, mode=with_umask(0o644)) as partial:
            options = f"subformat={config.subformat}"
            convert_image(disk, partial, "vmdk", ctx, what, options)
        return artifact.with_files(BUILDER_ID, [str(target)]), False
