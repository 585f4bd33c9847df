"""Packer-style flags (`-var k=v`, `-var-file=f`, `-only=a,b`, ...) for validate, build and
regenerate.

Packer spells flags with one dash and accepts `-flag=value` and `-flag value`;
packwrap also accepts two dashes. Order matters: -var and -var-file are kept in
command-line order (`settings`), because the later one wins.

    flags = parse_packer_flags(ctx.args, command="build")
    load_template(flags.path or ".", settings=flags.settings)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from packwrap.errors import UsageError

# flag -> kind: "bool", "value" (last wins), "list" (repeatable), "setting" (-var, -var-file)
_COMMON = {
    "var": "setting",
    "var-file": "setting",
    "only": "list",
    "except": "list",
    "machine-readable": "bool",
}
COMMAND_FLAGS: dict[str, dict[str, str]] = {
    "validate": {
        **_COMMON,
        "syntax-only": "bool",
        "no-warn-undeclared-var": "bool",
        "evaluate-datasources": "bool",
    },
    "regenerate": {"var": "setting", "var-file": "setting", "force": "bool"},
    "console": {"var": "setting", "var-file": "setting"},
    "build": {
        **_COMMON,
        "force": "bool",
        "force-install": "bool",
        "debug": "bool",
        "on-error": "value",
        "parallel-builds": "value",
        "color": "bool",
        "timestamp-ui": "bool",
        "warn-on-undeclared-var": "bool",
    },
}
ON_ERROR = ("cleanup", "abort", "ask", "run-cleanup-provisioner")


@dataclass
class PackerFlags:
    path: str | None = None
    settings: list[tuple[str, str]] = field(default_factory=list)  # ("var"|"file", value)
    only: list[str] = field(default_factory=list)
    except_: list[str] = field(default_factory=list)
    syntax_only: bool = False
    machine_readable: bool = False
    force: bool = False
    force_install: bool = False
    debug: bool = False
    on_error: str = "cleanup"
    parallel_builds: int = 0
    color: bool = True
    timestamp_ui: bool = False
    warn_undeclared: bool = True

    @property
    def var_args(self) -> list[str]:
        return [v for k, v in self.settings if k == "var"]

    @property
    def var_files(self) -> list[str]:
        return [v for k, v in self.settings if k == "file"]


def _bool(flag: str, value: str) -> bool:
    low = value.lower()
    if low in ("1", "t", "true", "yes", "on"):
        return True
    if low in ("0", "f", "false", "no", "off"):
        return False
    raise UsageError(f"-{flag}: expected true or false, got {value!r}")


def parse_packer_flags(argv: list[str], *, command: str = "validate") -> PackerFlags:
    """Parse Packer-style flags and at most one positional PATH."""
    known = COMMAND_FLAGS[command]
    flags = PackerFlags()
    positional: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional.extend(args[i:])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        kind = known.get(name)
        if kind is None:
            hint = difflib.get_close_matches(name, list(known), n=1)
            suggestion = f"; did you mean -{hint[0]}?" if hint else ""
            raise UsageError(f"unknown flag {arg.split('=')[0]!r} for {command}{suggestion}")
        if kind == "bool":
            on = _bool(name, value) if eq else True
            _set_bool(flags, name, on)
            continue
        if not eq:
            if i >= len(args):
                raise UsageError(f"-{name} needs a value")
            value = args[i]
            i += 1
        if kind == "setting":
            if name == "var" and "=" not in value:
                raise UsageError(f"-var {value!r}: expected NAME=VALUE")
            if not value:
                raise UsageError(f"-{name} needs a value")
            flags.settings.append(("var" if name == "var" else "file", value))
        elif kind == "list":
            items = [p.strip() for p in value.split(",") if p.strip()]
            (flags.only if name == "only" else flags.except_).extend(items)
        elif name == "on-error":
            if value not in ON_ERROR:
                raise UsageError(f"-on-error={value}: expected one of {', '.join(ON_ERROR)}")
            flags.on_error = value
        elif name == "parallel-builds":
            try:
                flags.parallel_builds = int(value)
            except ValueError:
                raise UsageError(f"-parallel-builds={value}: expected a number") from None
            if flags.parallel_builds < 0:
                raise UsageError("-parallel-builds must be 0 (no limit) or more")
    if len(positional) > 1:
        raise UsageError(f"expected one template path, got {len(positional)}: {positional}")
    flags.path = positional[0] if positional else None
    return flags


def _set_bool(flags: PackerFlags, name: str, on: bool) -> None:
    if name == "no-warn-undeclared-var":
        flags.warn_undeclared = not on
    elif name == "warn-on-undeclared-var":
        flags.warn_undeclared = on
    elif name == "timestamp-ui":
        flags.timestamp_ui = on
    elif name == "evaluate-datasources":
        pass  # accepted for Packer compatibility; packwrap has no data sources
    else:
        setattr(flags, name.replace("-", "_"), on)
