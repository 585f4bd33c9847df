"""Variable values: `--var NAME=VALUE` parsing, type checks, defaults per instance."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from jinja2.sandbox import SandboxedEnvironment

from packwrap.blueprint.model import Variable
from packwrap.errors import PackwrapError, UsageError

LOCKED_PASSWORD = "*" * 13  # passwd(5): no password can match; login by ssh key only
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def coerce(var: Variable, value: Any) -> Any:
    """Check/convert `value` (a --var string or a parsed value) to the variable's type."""
    typ = var.type.replace(" ", "")

    def bad(expected: str) -> PackwrapError:
        return UsageError(f"variable {var.name}: {value!r} is not {expected}")

    if typ == "string":
        if isinstance(value, bool | list | dict):
            raise bad("a string")
        out: Any = value if isinstance(value, str) else str(value)
    elif typ == "number":
        if isinstance(value, bool):
            raise bad("a number")
        if isinstance(value, int | float):
            out = value
        else:
            try:
                out = int(str(value).strip())
            except ValueError:
                try:
                    out = float(str(value).strip())
                except ValueError:
                    raise bad("a number") from None
    elif typ == "bool":
        if isinstance(value, bool):
            out = value
        elif str(value).strip().lower() in _TRUE:
            out = True
        elif str(value).strip().lower() in _FALSE:
            out = False
        else:
            raise bad("a bool (true or false)")
    elif typ in ("list(string)", "set(string)"):
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError:
                    raise bad('a list (JSON, e.g. ["a", "b"])') from None
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise bad("a list of strings")
        out = value
    else:  # a complex type (list(object(...)), map(...)): JSON on the command line
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise bad(f"JSON for type {var.type}") from None
        out = value
    if var.choices and out not in var.choices:
        choices = ", ".join(str(c) if c != "" else '""' for c in var.choices)
        raise UsageError(f"variable {var.name}: {value!r} is not one of {choices}")
    return out


def parse_var_args(args: Iterable[str], variables: Mapping[str, Variable]) -> dict[str, Any]:
    """`--var NAME=VALUE` strings -> {name: typed value}; unknown names get a did-you-mean."""
    out: dict[str, Any] = {}
    for arg in args:
        name, sep, raw = arg.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--var {arg!r}: expected NAME=VALUE")
        if name not in variables:
            hint = did_you_mean(name, variables)
            if name in ("root_password", "password"):
                hint = "; use --root-password (it is stored only as a bcrypt hash)"
            raise UsageError(f"--var {name}: the blueprint has no variable {name!r}{hint}")
        var = variables[name]
        if not var.settable:
            flag = {"release": "the blueprint name (openbsd-77)", "arch": "--arch"}
            raise UsageError(f"--var {name}: set it with {flag.get(name, 'its own flag')}")
        out[name] = coerce(var, raw)
    return out


def resolve_values(
    variables: Mapping[str, Variable],
    context: Mapping[str, Any],
    overrides: Mapping[str, Any],
) -> dict[str, Any]:
    """Every variable's value for one instance: overrides, else its (templated) default.

    Defaults with `default_template` are Jinja2 expressions over `context` (release, arch,
    name...) and the values resolved before them, in declaration order.
    """
    env = SandboxedEnvironment(autoescape=False)
    values: dict[str, Any] = {}
    for name, var in variables.items():
        if name in overrides:
            values[name] = overrides[name]
        elif var.default_template is not None:
            text = env.from_string(var.default_template).render({**context, **values})
            values[name] = coerce(var, text)
        else:
            values[name] = var.default
    return values


def check_password_hash(value: str, name: str = "root_password_hash") -> None:
    """Only a bcrypt hash or the 13-asterisk lock-out may reach install.conf (the
    installer package's rule; a usage error here because it came from --var)."""
    from packwrap.blueprint import installer

    try:
        installer.check_password_value(value, name)
    except UsageError:
        raise
    except PackwrapError as exc:
        raise UsageError(f"{exc}; to give a plaintext password use --root-password") from None
