"""Every installer answer as a typed blueprint variable.

Loaded from blueprints/openbsd/installer-variables.toml.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from packwrap.autoinstall.release import blueprints_dir
from packwrap.errors import PackwrapError


@dataclass(frozen=True)
class VariableDef:
    name: str
    type: str  # string | bool | number | list(...)
    default: Any
    help: str
    question: str  # prompt id in releases/<release>.toml
    sensitive: bool = False
    choices: tuple[Any, ...] = ()


def variables_file() -> Path:
    return blueprints_dir() / "openbsd" / "installer-variables.toml"


@cache
def _load() -> tuple[VariableDef, ...]:
    path = variables_file()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PackwrapError(f"cannot read installer variables: {exc}", file=str(path)) from None
    return tuple(
        VariableDef(
            name=v["name"],
            type=v["type"],
            default=v.get("default"),
            help=v.get("help", ""),
            question=v.get("question", ""),
            sensitive=bool(v.get("sensitive", False)),
            choices=tuple(v.get("choices", ())),
        )
        for v in data.get("variable", [])
    )


def installer_variables() -> list[VariableDef]:
    return list(_load())


def defaults() -> dict[str, Any]:
    return {v.name: v.default for v in _load()}


def _coerce(var: VariableDef, value: Any) -> Any:
    t = var.type
    where = f"variable {var.name}"
    if t == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
            return value.lower() in ("true", "yes")
        raise PackwrapError(f"{where}: expected true or false, got {value!r}")
    if t == "number":
        if isinstance(value, bool):
            raise PackwrapError(f"{where}: expected a number, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise PackwrapError(f"{where}: expected a number, got {value!r}") from None
    if t.startswith("list"):
        if value is None or value == "":
            return []
        if isinstance(value, str) and t == "list(string)":
            return value.split()
        if not isinstance(value, list | tuple):
            raise PackwrapError(f"{where}: expected a list, got {value!r}")
        return list(value)
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise PackwrapError(f"{where}: expected a string, got {value!r}")
    return str(value)


def resolve(values: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults + the given values (unknown names ignored), coerced and choice-checked."""
    out: dict[str, Any] = {}
    for var in _load():
        value = values.get(var.name, var.default)
        value = _coerce(var, var.default if value is None else value)
        if var.choices and value not in var.choices:
            allowed = ", ".join(str(c) if c != "" else '""' for c in var.choices)
            raise PackwrapError(f"variable {var.name}: {value!r} is not one of {allowed}")
        out[var.name] = value
    return out
