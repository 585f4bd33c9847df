"""The shell-local post-processor: commands run on the build host after the build
(Packer's shell-local: hashicorp/packer-plugin-sdk shell-local/config.go and run.go,
read at commit 0c3dee08).

One of `inline`, `script` or `scripts` (or the deprecated `command`). Inline lines become
one temporary script, `#!<inline_shebang>` first (default `/bin/sh -e`). Each script runs
as `execute_command` (default `["/bin/sh", "-c", "{{.Vars}} {{.Script}}"]`, so a
`script` must be executable), where `.Vars` is `NAME='value' ` for PACKER_BUILD_NAME,
PACKER_BUILDER_TYPE, `environment_vars` and `env`, sorted by name, and `.Script` the
script's absolute path. Output goes to the build UI line by line; an exit status outside
`valid_exit_codes` (default [0]) fails the post-processor, quoting the last lines.
`only_on` skips it on other host systems. The input artifact is passed on, always kept.
"""

from __future__ import annotations

import contextlib
import os
import platform
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from packwrap.childproc import Cancel, run_child
from packwrap.config.schema import BOOL, LIST, MAP, STRING, Config, Option, Schema
from packwrap.errors import PackwrapError

if TYPE_CHECKING:
    from packwrap.build.artifact import Artifact
    from packwrap.postprocess.base import PPContext

DEFAULT_EXECUTE = ["/bin/sh", "-c", "{{.Vars}} {{.Script}}"]
DEFAULT_SHEBANG = "/bin/sh -e"
ENV_VAR_FORMAT = "%s='%s' "
#: Packer's only_on names (Go's GOOS values it accepts).
SYSTEMS = ("darwin", "freebsd", "linux", "openbsd", "solaris", "windows")


def _exit_codes(value: Any) -> list[int]:
    codes = []
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool | list | dict | float) or not str(v).lstrip("-").isdigit():
            raise ValueError("expected a list of integers (exit codes)")
        codes.append(int(str(v), 10))
    return codes


def _env_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or any(isinstance(v, list | dict) for v in value.values()):
        raise ValueError("expected a map of strings (NAME = value)")
    return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}


def _check(config: Config, problem: Callable[[str, str | None], None]) -> None:
    """Packer's shell-local Validate, one problem per rule."""
    given = [k for k in ("command", "inline", "script", "scripts") if config.get(k)]
    if not given:
        problem("shell-local: one of inline, script or scripts is required", None)
    elif len(given) > 1:
        problem(f"shell-local: set only one of inline, script, scripts (got {', '.join(given)})",
                given[1])  # fmt: skip
    for name in _scripts(config):
        if not Path(name).is_file():
            option = "script" if config.get("script") else "scripts"
            problem(f"shell-local: bad script {name!r}: no such file", option)
    for var in config.environment_vars:
        if not var.partition("=")[0] or "=" not in var:
            problem(f"shell-local: environment variable not in format 'key=value': {var!r}",
                    "environment_vars")  # fmt: skip
    for system in config.only_on:
        if system not in SYSTEMS:
            problem(f"shell-local: invalid OS in only_on: {system!r} (one of {', '.join(SYSTEMS)})",
                    "only_on")  # fmt: skip
    if not config.execute_command:
        problem("shell-local: execute_command must not be empty", "execute_command")
    # Template fields are checked now, not after a long build (the builder's generated
    # data may add fields: packwrap's builders add none).
    sample = {"Vars": "", "Script": "", "Command": "", **dict.fromkeys(HTTP_DATA, "")}
    for option in ("execute_command", "inline"):
        for text in config.get(option) or []:
            try:
                _render(text, sample, f"shell-local {option}")
            except PackwrapError as exc:
                problem(exc.message, option)


def _scripts(config: Config) -> list[str]:
    return [config.script] if config.get("script") else list(config.scripts or [])


#: The builder's generated data shell-local exposes, as Packer names them.
HTTP_DATA = {"PackerHTTPAddr": "PACKER_HTTP_ADDR", "PackerHTTPIP": "PACKER_HTTP_IP",
             "PackerHTTPPort": "PACKER_HTTP_PORT"}  # fmt: skip


def flattened_env(config: Config, ctx: PPContext, data: Mapping[str, object]) -> str:
    """Packer's {{.Vars}}: `NAME='value' ` for each variable, sorted by name, with a
    single quote in a value written as '"'"'."""
    env = {"PACKER_BUILD_NAME": ctx.build_name, "PACKER_BUILDER_TYPE": ctx.builder_type}
    env.update({name: str(data[key]) for key, name in HTTP_DATA.items() if data.get(key)})
    for var in config.environment_vars:
        key, _, value = var.partition("=")
        env[key] = value
    env.update(config.env or {})
    fmt = config.env_var_format or ENV_VAR_FORMAT
    try:
        return "".join(fmt % (k, env[k].replace("'", "'\"'\"'")) for k in sorted(env))
    except (TypeError, ValueError):
        raise PackwrapError(
            f"shell-local: env_var_format {fmt!r} must hold exactly two %s"
        ) from None


class ShellLocalPostProcessor:
    type_name: ClassVar[str] = "shell-local"
    force_keep: ClassVar[bool] = True
    schema: ClassVar[Schema] = Schema(
        [
            Option("inline", LIST, help="commands, run as one script with inline_shebang"),
            Option("script", STRING, help="a local executable script"),
            Option("scripts", LIST, help="local executable scripts, run in order"),
            Option("command", STRING, help="deprecated: one inline command"),
            Option("environment_vars", LIST, default=[], help="NAME=value pairs"),
            Option("env", MAP, default={}, parse=_env_map),
            Option("env_var_format", STRING),
            Option("execute_command", LIST, default=DEFAULT_EXECUTE),
            Option("inline_shebang", STRING, default=DEFAULT_SHEBANG),
            Option("only_on", LIST, default=[]),
            Option("valid_exit_codes", LIST, default=[0], parse=_exit_codes),
            Option("tempfile_extension", STRING),
            Option("use_linux_pathing", BOOL, default=False, ignored=True),
        ],
        [_check],
    )

    def run(self, config: Config, artifact: Artifact, ctx: PPContext) -> tuple[Artifact, bool]:
        system = platform.system().lower()
        if config.only_on and system not in config.only_on:
            ctx.ui.say("Skipping shell-local due to runtime OS")
            return artifact, True
        data: dict[str, object] = dict(artifact.state.get("generated_data") or {})
        variables = flattened_env(config, ctx, data)
        with _inline_script(config, data) as inline:
            for script in [inline] if inline else _scripts(config):
                path = str((ctx.cwd / script).resolve())
                argv = _execute_command(config, data, variables, path)
                ctx.ui.say(f"Running local shell script: {script}")
                status, tail = run_streamed(argv, ctx)
                if status not in config.valid_exit_codes:
                    shown = " | ".join(tail) if tail else "(no output)"
                    allowed = ", ".join(map(str, config.valid_exit_codes))
                    label = "the inline commands" if inline else f"script {script}"
                    raise PackwrapError(
                        f"shell-local: {label} exited with status {status} "
                        f"(allowed: {allowed}); last output: {shown}"
                    )
        return artifact, True


def _render(text: str, data: Mapping[str, object], what: str) -> str:
    from packwrap.build.bootcommand import render

    return render(text, data, what=what) if "{{" in text else text


@contextlib.contextmanager
def _inline_script(config: Config, data: Mapping[str, object]) -> Any:
    """The inline lines as a temporary script (None when there are none); removed after."""
    lines = list(config.inline or []) or ([config.command] if config.get("command") else [])
    if not lines:
        yield None
        return
    ext = (config.tempfile_extension or "").lstrip(".")
    fh = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, removed in finally
        "w", encoding="utf-8", prefix="packer-shell", suffix=f".{ext}" if ext else "", delete=False
    )
    name = fh.name
    try:
        with fh:
            if config.inline_shebang:
                fh.write(f"#!{config.inline_shebang}\n")
            for line in lines:
                fh.write(_render(line, data, "shell-local inline") + "\n")
        os.chmod(name, 0o700)
        yield name
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def _execute_command(
    config: Config, data: Mapping[str, object], variables: str, script: str
) -> list[str]:
    fields = {**data, "Vars": variables, "Script": script, "Command": script}
    return [_render(part, fields, "shell-local execute_command") for part in config.execute_command]


def run_streamed(argv: list[str], ctx: PPContext) -> tuple[int, list[str]]:
    """Run argv in ctx.cwd, each output line to the build UI; (exit status, last lines).
    Ctrl-C ends the command's process group (packwrap/childproc.py)."""
    done = run_child(
        argv,
        lambda line: ctx.ui.message(line.rstrip("\n")),
        what="shell-local",
        cancel=Cancel(ctx.cancel_event, "post-processor 'shell-local'"),
        cwd=ctx.cwd,
    )
    return done.status, done.tail
