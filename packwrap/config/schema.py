"""Declare a builder's options once; get defaults, types, validation and did-you-mean.

A plugin declares a Schema (a list of Option plus cross-option checks). `prepare`
turns a source block's evaluated body into a Config, collecting *every* problem
(unknown option, wrong type, missing value, conflict) with its file:line, so
`packwrap validate` can report them all at once.

Values are parsed once, here: an Option's `parse` hook turns the raw value into the
typed value (a Size, seconds, a choice) or raises ValueError with the reason; steps
and drivers only ever see the typed value. A problem points at where the value was
set (a var-file line, `-var NAME`, PKR_VAR_NAME or the variable's default) when the
option is a plain `var.NAME`, else at the template line.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, NoReturn, TypeVar

from packwrap.durations import parse_duration
from packwrap.errors import PackwrapError

# Option types. Values arrive from HCL/JSON already as Python values.
STRING, INT, BOOL, DURATION, LIST, LIST_OF_LISTS, MAP, ANY = (
    "string",
    "int",
    "bool",
    "duration",
    "list",
    "list_of_lists",
    "map",
    "any",
)


# A parse hook: raw value (str, number, list... as HCL/JSON gave it) -> typed value;
# ValueError("reason") for a bad one (the schema adds the option name and the value).
Parse = Callable[[Any], Any]


@dataclass(frozen=True)
class Option:
    name: str
    type: str = STRING
    default: Any = None
    required: bool = False
    help: str = ""
    aliases: tuple[str, ...] = ()  # older names (e.g. the seed demo's iso_image -> cdrom)
    choices: tuple[Any, ...] | None = None
    ignored: bool = False  # accepted for compatibility, has no effect (a warning says so)
    parse: Parse | None = None  # replaces `type`'s coercion (see Parse)

    def default_value(self) -> Any:
        """The default, through the parse hook (defaults are written like user values)."""
        if self.parse is not None and self.default is not None:
            return self.parse(self.default)
        return self.default


@dataclass(frozen=True)
class ValueOrigin:
    """Where an option's value came from, when it is (or uses) a template variable."""

    variable: str
    label: str  # "-var", "PKR_VAR_x", "default" or "file:line"
    file: str | None = None  # var-file or template file (the variable's default)
    line: int | None = None
    bare: bool = True  # the option is exactly var.NAME (else it only uses it)

    def where(self) -> tuple[str, int | None]:
        """file:line to report a bad value at (`-var NAME` when it has no file)."""
        if self.file is not None:
            return self.file, self.line
        if self.label == "-var":
            return f"-var {self.variable}", None
        return self.label, None

    def describe(self) -> str:
        file, line = self.where()
        return f"{file}:{line}" if line is not None else file


@dataclass(frozen=True)
class Problem:
    message: str
    file: str | None = None
    line: int | None = None
    option: str | None = None
    variable: str | None = None  # the option is exactly this template variable

    def __str__(self) -> str:
        return str(PackwrapError(self.message, file=self.file, line=self.line))


class ConfigError(PackwrapError):
    """One or more configuration problems; str() is the first, .problems has all."""

    def __init__(self, problems: list[Problem]):
        # Two builds reading one bad variable report it once (same text, same place).
        self.problems = list({(p.message, p.file, p.line): p for p in problems}.values())
        problems = self.problems
        first = problems[0]
        extra = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(first.message + extra, file=first.file, line=first.line)


class Config(dict[str, Any]):
    """The prepared options: a dict with attribute access (config.vm_name), frozen once
    `Schema.prepare` has run its checks (the checks may still normalise values).

    A builder subclasses it with one annotation per option (`disk_size: Size`) and hands
    the class to its Schema, so steps read typed values, never Any; unannotated names
    (options added later) still read through __getattr__. tests/unit/test_config_typed.py
    keeps the annotations and the options in step."""

    _frozen = False

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def freeze(self) -> None:
        object.__setattr__(self, "_frozen", True)

    def _refuse(self, *_args: object, **_kwargs: object) -> NoReturn:
        raise TypeError("a prepared config is read-only (set values in the schema's checks)")

    def __setitem__(self, key: str, value: Any) -> None:
        if self._frozen:
            self._refuse()
        super().__setitem__(key, value)

    def __setattr__(self, name: str, value: Any) -> None:
        self._refuse()

    def __delitem__(self, key: str) -> None:
        self._refuse()

    def __ior__(self, other: object) -> NoReturn:  # type: ignore[misc]
        self._refuse()

    update = setdefault = pop = popitem = clear = _refuse

    def __reduce__(self) -> tuple[Any, ...]:  # copy, deepcopy and pickle: a frozen copy
        return (_frozen_config, (type(self), dict(self)))


def _frozen_config(config_type: type[Config], values: dict[str, Any]) -> Config:
    config = config_type(values)
    config.freeze()
    return config


C = TypeVar("C", bound=Config)


# A check receives the prepared config and a `problem(message, option)` callback. A check
# may take a narrower config (the common options' checks take a CommonConfig): a schema
# accepts every check that takes its config type or a base of it.
ProblemCallback = Callable[[str, str | None], None]
Check = Callable[[Config, ProblemCallback], None]
TypedCheck = Callable[[C, ProblemCallback], None]


@dataclass
class SourceBody:
    """What the template model hands a schema: evaluated values plus where they came from."""

    values: Mapping[str, Any]
    file: str | None = None
    line: int | None = None  # line of the source block
    lines: Mapping[str, int] = field(default_factory=dict)  # option -> line
    origins: Mapping[str, ValueOrigin] = field(default_factory=dict)  # option -> variable


class Schema(Generic[C]):
    """A builder's options and checks; `config_type` is its typed Config subclass."""

    def __init__(
        self,
        options: Iterable[Option],
        checks: Iterable[TypedCheck[C]] = (),
        config_type: type[C] = Config,  # type: ignore[assignment]
    ):
        self.config_type: type[C] = config_type
        self.options: dict[str, Option] = {}
        self.aliases: dict[str, str] = {}
        for opt in options:
            self.options[opt.name] = opt
            for alias in opt.aliases:
                self.aliases[alias] = opt.name
        self.checks = list(checks)

    def extend(self, options: Iterable[Option], checks: Iterable[TypedCheck[C]] = ()) -> Schema[C]:
        merged = Schema(list(self.options.values()), self.checks, self.config_type)
        for opt in options:
            merged.options[opt.name] = opt
            for alias in opt.aliases:
                merged.aliases[alias] = opt.name
        merged.checks.extend(checks)
        return merged

    def prepare(self, body: SourceBody) -> tuple[C, list[Problem], list[str]]:
        """Config with defaults applied, every problem found, and warnings."""
        problems: list[Problem] = []
        warnings: list[str] = []

        def problem(message: str, option: str | None = None) -> None:
            file, line = body.file, (body.lines.get(option, body.line) if option else body.line)
            origin = body.origins.get(option) if option else None
            if origin is not None and origin.bare:
                file, line = origin.where()
            elif origin is not None:
                message += f" (uses var.{origin.variable}, set at {origin.describe()})"
            variable = origin.variable if origin is not None and origin.bare else None
            problems.append(Problem(message, file, line, option, variable))

        config = self.config_type()
        for key, value in body.values.items():
            name = self.aliases.get(key, key)
            opt = self.options.get(name)
            if opt is None:
                hint = difflib.get_close_matches(key, [*self.options, *self.aliases], n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                problem(f"unknown option {key!r}{suggestion}", key)
                continue
            if name in config and key != name:
                problem(f"{key!r} and {name!r} are the same option; set only one", key)
                continue
            if opt.ignored:
                warnings.append(f"option {key!r} is accepted but has no effect")
            try:
                config[name] = _coerce(value, opt)
            except PackwrapError as exc:
                problem(exc.message, key)
        for opt in self.options.values():
            if opt.name not in config:
                if opt.required:
                    problem(f"missing required option {opt.name!r}")
                config[opt.name] = opt.default_value()
        if not problems:
            for check in self.checks:
                check(config, problem)
        config.freeze()
        return config, problems, warnings


def _coerce(value: Any, opt: Option) -> Any:
    """The option's value, parsed once: its own parse hook, else its type's."""
    if value is None:
        return opt.default_value()
    if value == "" and (opt.type != STRING or opt.choices is not None or opt.parse is not None):
        # Packer's zero value: an empty string means "not set" (accelerator = "").
        return opt.default_value()
    if opt.parse is not None:
        try:
            value = opt.parse(value)
        except ValueError as exc:
            raise PackwrapError(f"{opt.name} {value!r}: {exc}") from None
    elif opt.type == DURATION:
        value = parse_duration(value, what=f"duration for {opt.name!r}")
    elif opt.type in _TYPE_PARSERS:
        try:
            value = _TYPE_PARSERS[opt.type](value)
        except ValueError:
            expected = opt.type.replace("_", " ")
            raise PackwrapError(
                f"option {opt.name!r}: expected {expected}, got {value!r}"
            ) from None
    if opt.choices is not None and value not in opt.choices:
        allowed = ", ".join(map(str, opt.choices))
        raise PackwrapError(f"option {opt.name!r}: {value!r} is not one of {allowed}")
    return value


# The built-in types' parse hooks: a ValueError means "not of this type".


def _string(value: Any) -> str:
    if isinstance(value, bool | list | dict):
        raise ValueError
    return str(value)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    return int(str(value), 10)


def _bool(value: Any) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise ValueError
    return value


def _list(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or any(isinstance(v, list | dict) for v in value):
        raise ValueError
    return [str(v) for v in value]


def _list_of_lists(value: Any) -> list[list[str]]:
    if not isinstance(value, list) or not all(isinstance(v, list) for v in value):
        raise ValueError
    return [[str(x) for x in v] for v in value]


def _map(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError
    return value


_TYPE_PARSERS: dict[str, Parse] = {
    STRING: _string,
    INT: _int,
    BOOL: _bool,
    LIST: _list,
    LIST_OF_LISTS: _list_of_lists,
    MAP: _map,
}
