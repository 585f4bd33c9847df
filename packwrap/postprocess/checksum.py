"""The checksum post-processor, in Packer's exact format (Packer's checksum post-processor).

For each checksum type and each artifact file, appends `<hex>\\t<basename>\\n` to the
output file (default `packer_{{.BuildName}}_{{.BuilderType}}_{{.ChecksumType}}.checksum`,
parent directories created). The returned artifact (BuilderId
packer.post-processor.checksum, Id "") lists the input files plus the checksum files
it created; the input is always kept.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from packwrap.build.artifact import Artifact
from packwrap.config.schema import LIST, STRING, Config, Option, Schema
from packwrap.errors import Cancelled, PackwrapError
from packwrap.media.checksums import file_digest

if TYPE_CHECKING:
    from packwrap.postprocess.base import PPContext

BUILDER_ID = "packer.post-processor.checksum"
TYPES = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")
DEFAULT_OUTPUT = "packer_{{.BuildName}}_{{.BuilderType}}_{{.ChecksumType}}.checksum"


def _check(config: Config, problem: Callable[[str, str | None], None]) -> None:
    from packwrap.build.bootcommand import render

    for t in config.checksum_types:
        if t not in TYPES:
            problem(
                f"unrecognized checksum type {t!r} (one of {', '.join(TYPES)})", "checksum_types"
            )
    # the output template's fields, checked now rather than after a long build
    sample = dict.fromkeys(("BuildName", "BuilderType", "ChecksumType"), "x")
    try:
        render(config.output or DEFAULT_OUTPUT, sample, what="checksum output")
    except PackwrapError as exc:
        problem(exc.message, "output")


class ChecksumPostProcessor:
    type_name: ClassVar[str] = "checksum"
    force_keep: ClassVar[bool] = True
    schema: ClassVar[Schema] = Schema(
        [
            Option("checksum_types", LIST, ["md5"]),
            Option("output", STRING, DEFAULT_OUTPUT),
        ],
        [_check],
    )

    def run(self, config: Config, artifact: Artifact, ctx: PPContext) -> tuple[Artifact, bool]:
        from packwrap.build.bootcommand import render

        data: dict[str, object] = dict(artifact.state.get("generated_data") or {})
        data.update(BuildName=ctx.build_name, BuilderType=ctx.builder_type)
        created: list[str] = []
        check = lambda: ctx.check_cancelled("post-processor 'checksum'")  # noqa: E731
        try:
            for kind in config.checksum_types or ["md5"]:
                data["ChecksumType"] = kind
                output = config.output or DEFAULT_OUTPUT
                target = Path(render(output, data, what="checksum output"))
                if not target.is_absolute():
                    target = ctx.cwd / target
                for name in artifact.files:
                    if not target.exists() and str(target) not in created:
                        created.append(str(target))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        digest = file_digest(Path(ctx.cwd, name), kind, check)
                    except OSError as exc:
                        raise PackwrapError(
                            f"checksum: cannot read {name}: {exc.strerror}"
                        ) from None
                    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                    with os.fdopen(fd, "a", encoding="utf-8") as fh:
                        fh.write(f"{digest}\t{os.path.basename(name)}\n")
        except Cancelled:
            # Ctrl-C while hashing a large image: no half-written checksum file is left.
            for c in created:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(c)
            raise
        files = [*artifact.files, *created]
        for c in created:
            ctx.ui.message(f"Checksums written to {c}")
        return artifact.with_files(BUILDER_ID, files), True
