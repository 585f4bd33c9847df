"""The `shell` provisioner: inline commands or scripts, uploaded then executed.

Packer's semantics: `inline` lines become one script run with `inline_shebang`
(default `/bin/sh -e`, so the first failing line stops it); `script`/`scripts` are
uploaded and executed in order; `execute_command` is a Go template over .Vars and
.Path; `expect_disconnect` treats a dropped connection (e.g. a reboot) as success.
"""

from __future__ import annotations

import collections
import random
import re
import shlex
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from packwrap.config import Config, Option, Schema
from packwrap.config.schema import BOOL, INT, LIST, STRING
from packwrap.errors import PackwrapError
from packwrap.provision.base import COMMON_OPTIONS, ProvisionContext, ProvisionerConfig

DEFAULT_EXECUTE = "chmod +x {{.Path}}; {{.Vars}} {{.Path}}"


def _one_source(config: Config, problem: Callable[[str, str | None], None]) -> None:
    sources = {"inline": config.inline, "script": config.script, "scripts": config.scripts}
    given = [name for name, value in sources.items() if value]
    if len(given) != 1:
        problem("shell provisioner: exactly one of inline, script, scripts is required", None)
    for var in config.environment_vars or []:
        if "=" not in var or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var.split("=", 1)[0]):
            problem(f"shell provisioner: environment_vars entry {var!r} is not NAME=value", None)


class ShellProvisioner:
    type_name: ClassVar[str] = "shell"
    schema: ClassVar[Schema[ProvisionerConfig]] = Schema(
        [
            Option("inline", LIST, help="commands, run as one script with inline_shebang"),
            Option("script", STRING, help="local script to upload and run"),
            Option("scripts", LIST, help="local scripts, run in order"),
            Option("environment_vars", LIST, default=[], help="NAME=value pairs"),
            Option("execute_command", STRING, default=DEFAULT_EXECUTE),
            Option("inline_shebang", STRING, default="/bin/sh -e"),
            Option("remote_folder", STRING, default="/tmp"),
            Option("remote_file", STRING),
            Option("expect_disconnect", BOOL, default=False),
            Option("skip_clean", BOOL, default=False),
            Option("valid_exit_codes", LIST, default=["0"]),
            Option("max_retries", INT, default=0),
            *COMMON_OPTIONS,
        ],
        [_one_source],
        ProvisionerConfig,
    )

    def __init__(self, config: Config):
        self.config = config

    def provision(self, ctx: ProvisionContext) -> None:
        cfg = self.config
        if cfg.inline:
            with tempfile.TemporaryDirectory(prefix="packwrap-inline-") as tmp:
                script = Path(tmp) / "inline.sh"
                body = "\n".join(cfg.inline)
                script.write_text(f"#!{cfg.inline_shebang}\n{body}\n")
                ctx.say("Provisioning with shell script: <inline>")
                self._run_script(ctx, script, "inline")
            return
        scripts = [cfg.script] if cfg.script else list(cfg.scripts)
        for name in scripts:
            path = (ctx.template_dir / name).resolve()
            if not path.is_file():
                raise PackwrapError(f"shell provisioner: script {name} not found ({path})")
            ctx.say(f"Provisioning with shell script: {name}")
            self._run_script(ctx, path, name)

    def _run_script(self, ctx: ProvisionContext, local: Path, label: str) -> None:
        cfg = self.config
        remote_name = cfg.remote_file or f"script_{random.randint(1000, 9999)}.sh"
        remote = f"{cfg.remote_folder.rstrip('/')}/{remote_name}"
        ctx.communicator.upload(local, remote)
        command = self._execute_command(remote)
        tail: collections.deque[str] = collections.deque(maxlen=15)

        def out(line: str) -> None:
            tail.append(line)
            ctx.output(line)

        status = ctx.communicator.run(command, on_output=out, cancel=ctx.cancel)
        if status == -1:
            if cfg.expect_disconnect:
                ctx.say("Connection dropped as expected (expect_disconnect)")
                return
            raise PackwrapError(f"shell provisioner: connection lost while running {label}")
        if str(status) not in cfg.valid_exit_codes:
            shown = " | ".join(tail) if tail else "(no output)"
            raise PackwrapError(
                f"shell provisioner {label} exited with status {status}; last output: {shown}"
            )
        if not cfg.skip_clean:
            ctx.communicator.run(f"rm -f {shlex.quote(remote)}")

    def _execute_command(self, remote: str) -> str:
        env = " ".join(
            f"{name}={shlex.quote(value)}"
            for name, value in (v.split("=", 1) for v in self.config.environment_vars or [])
        )
        template = self.config.execute_command
        fields = {"Path": shlex.quote(remote), "Vars": env}

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in fields:
                raise PackwrapError(f"execute_command: unknown template field .{name}")
            return fields[name]

        return re.sub(r"\{\{\s*\.(\w+)\s*\}\}", sub, template).strip()
