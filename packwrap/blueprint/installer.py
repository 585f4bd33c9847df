"""The blueprint engine's only door into packwrap.autoinstall (response files, releases).

Kept in one place so the engine does not care how the autoinstall package shapes its
data (dataclasses or dicts), and so tests can replace these five functions.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from packwrap.blueprint.model import Variable
from packwrap.errors import PackwrapError


def _attr(module: str, name: str, *more_modules: str) -> Any:
    for mod in (module, *more_modules):
        try:
            return getattr(importlib.import_module(f"packwrap.autoinstall.{mod}"), name)
        except (ImportError, AttributeError):
            continue
    raise PackwrapError(
        f"packwrap.autoinstall.{module}.{name} is not available in this installation"
    )


def known_releases() -> list[str]:
    """Releases the autoinstall data knows, oldest first ("7.5", "7.6", ...)."""
    releases = [str(getattr(r, "version", r)) for r in _attr("release", "known_releases")()]
    return sorted(set(releases), key=lambda v: tuple(int(x) for x in v.split(".")))


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def installer_variables() -> list[Variable]:
    """The installer's answers as blueprint variables (name, type, default, help...)."""
    out: list[Variable] = []
    for item in _attr("variables", "installer_variables")():
        choices = _get(item, "choices")
        out.append(
            Variable(
                name=str(_get(item, "name")),
                type=str(_get(item, "type", "string") or "string"),
                default=_get(item, "default"),
                help=str(_get(item, "help", "") or _get(item, "description", "") or ""),
                sensitive=bool(_get(item, "sensitive", False)),
                choices=list(choices) if choices else None,
            )
        )
    return out


def render_install_conf(values: Mapping[str, Any], release: str) -> str:
    return _attr("render", "render_install_conf")(dict(values), release)


def render_disklabel(layout: Any) -> str:
    return _attr("render", "render_disklabel", "disklabel")(layout)


def hash_password(password: str) -> str:
    return _attr("passwords", "hash_password")(password)


def check_password_value(value: str, name: str) -> None:
    """The installer's rule for a password answer (bcrypt, cost >= 10, or the lock-out)."""
    _attr("passwords", "check_password_value")(value, name)
