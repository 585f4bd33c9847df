"""The `file` provisioner: upload a file or a directory (trailing `/` = its contents)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from packwrap.config import Config, Option, Schema
from packwrap.config.schema import STRING
from packwrap.errors import PackwrapError
from packwrap.provision.base import COMMON_OPTIONS, ProvisionContext, ProvisionerConfig


def _check(config: Config, problem: Callable[[str, str | None], None]) -> None:
    if bool(config.source) == bool(config.content):
        problem("file provisioner: exactly one of source or content is required", None)
    if config.direction != "upload":
        problem('file provisioner: only direction = "upload" is supported', "direction")


class FileProvisioner:
    type_name: ClassVar[str] = "file"
    schema: ClassVar[Schema[ProvisionerConfig]] = Schema(
        [
            Option("source", STRING),
            Option("content", STRING),
            Option("destination", STRING, required=True),
            Option("direction", STRING, default="upload"),
            *COMMON_OPTIONS,
        ],
        [_check],
        ProvisionerConfig,
    )

    def __init__(self, config: Config):
        self.config = config

    def provision(self, ctx: ProvisionContext) -> None:
        cfg = self.config
        dest = cfg.destination
        if cfg.content is not None:
            import tempfile

            with tempfile.TemporaryDirectory(prefix="packwrap-file-") as tmp:
                local = Path(tmp) / Path(dest).name
                local.write_text(cfg.content)
                ctx.say(f"Uploading content => {dest}")
                ctx.communicator.upload(local, dest)
            return
        source = (ctx.template_dir / cfg.source).resolve()
        if not source.exists():
            raise PackwrapError(f"file provisioner: source {cfg.source} does not exist ({source})")
        ctx.say(f"Uploading {cfg.source} => {dest}")
        if source.is_dir() and cfg.source.endswith("/"):
            # Packer: a trailing slash uploads the directory's contents into dest.
            status = ctx.communicator.run(f"mkdir -p {shlex.quote(dest)}")
            if status != 0:
                raise PackwrapError(f"file provisioner: cannot create {dest} (status {status})")
            for child in sorted(source.iterdir()):
                ctx.communicator.upload(child, dest.rstrip("/") + "/" + child.name)
        else:
            ctx.communicator.upload(source, dest)
