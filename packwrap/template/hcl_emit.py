"""Write HCL2 text already formatted the way `packer fmt` (hclwrite) formats it.

hclwrite's rules that matter here: 2-space indent per nesting level; in a run of
consecutive lines that each hold a whole single-line `name = value`, the `=`
signs are aligned one space after the longest name. A blank line, a comment
line, a block header or closing brace, or a value spanning several lines ends
the run (a line that opens brackets without closing them has no aligned `=`).

    emit([Attribute("a", 1), Blank(), Block("source", ["qemu", "x"], [...])])

Values: str (a literal: quoted and escaped, `${` becomes `$${`), int, float, bool,
None, list, dict, or Expr("var.x") for raw HCL expression text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

INDENT = "  "
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_KEYWORDS = {"true", "false", "null", "for", "in", "if"}
# A list of scalars goes on one line when that line stays this short.
MAX_INLINE = 100


@dataclass(frozen=True)
class Expr:
    """Raw HCL expression text, written as is (e.g. `var.x`, `"${var.x}-y"`)."""

    text: str


@dataclass
class Attribute:
    name: str
    value: Any


@dataclass
class Block:
    type: str
    labels: Sequence[str] = ()
    body: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Blank:
    """An empty line (it also ends an alignment run)."""


@dataclass(frozen=True)
class Comment:
    """A comment line; `text` without the leading `# `."""

    text: str


Item = Attribute | Block | Blank | Comment


def quote(s: str) -> str:
    """An HCL quoted string literal for s (interpolation sequences escaped)."""
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    text = "".join(out).replace("${", "$${").replace("%{", "%%{")
    return f'"{text}"'


def key(name: str) -> str:
    """An object key or attribute name: bare when it is an identifier."""
    if _IDENT.match(name) and name not in _KEYWORDS:
        return name
    return quote(name)


def _scalar(value: Any) -> str | None:
    if isinstance(value, Expr):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value} has no HCL literal")
        return json.dumps(value)
    if isinstance(value, str):
        return quote(value)
    return None


def value_lines(value: Any, level: int) -> list[str]:
    """The value's text; lines after the first are fully indented for `level`."""
    text = _scalar(value)
    if text is not None:
        return text.split("\n")  # only an Expr can span lines
    pad = INDENT * (level + 1)
    if isinstance(value, Mapping):
        if not value:
            return ["{}"]
        inner = _body_lines([Attribute(k, v) for k, v in value.items()], level + 1, keys=True)
        return ["{", *inner, INDENT * level + "}"]
    if isinstance(value, Iterable):
        items = list(value)
        if not items:
            return ["[]"]
        scalars = [_scalar(v) for v in items]
        if all(s is not None and "\n" not in s for s in scalars):
            one = "[" + ", ".join(scalars) + "]"  # type: ignore[arg-type]
            if len(one) + len(pad) <= MAX_INLINE:
                return [one]
        lines = ["["]
        for item in items:
            sub = value_lines(item, level + 1)
            sub[0] = pad + sub[0]
            sub[-1] += ","
            lines.extend(sub)
        lines.append(INDENT * level + "]")
        return lines
    raise TypeError(f"cannot write a {type(value).__name__} as HCL")


def _body_lines(items: Sequence[Item], level: int, *, keys: bool = False) -> list[str]:
    pad = INDENT * level
    out: list[str] = []
    run: list[tuple[str, str]] = []  # (name, single-line value) waiting for alignment

    def flush() -> None:
        if run:
            width = max(len(n) for n, _ in run)
            out.extend(f"{pad}{n.ljust(width)} = {v}" for n, v in run)
            run.clear()

    for item in items:
        if isinstance(item, Attribute):
            name = key(item.name) if keys else _attr_name(item.name)
            lines = value_lines(item.value, level)
            if len(lines) == 1:
                run.append((name, lines[0]))
                continue
            flush()
            out.append(f"{pad}{name} = {lines[0]}")
            out.extend(lines[1:])
        elif isinstance(item, Block):
            flush()
            out.extend(block_lines(item, level))
        elif isinstance(item, Blank):
            flush()
            out.append("")
        elif isinstance(item, Comment):
            flush()
            out.append(f"{pad}# {item.text}".rstrip() if item.text else f"{pad}#")
        else:
            raise TypeError(f"not an HCL body item: {item!r}")
    flush()
    return out


def _attr_name(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"{name!r} is not a valid HCL attribute name")
    return name


def block_lines(block: Block, level: int = 0) -> list[str]:
    pad = INDENT * level
    head = " ".join([block.type, *(quote(label) for label in block.labels)])
    if not block.body:
        return [f"{pad}{head} {{}}"]
    return [f"{pad}{head} {{", *_body_lines(block.body, level + 1), f"{pad}}}"]


def emit(items: Sequence[Item]) -> str:
    """A whole file: items at the top level, ending with one newline."""
    lines = _body_lines(items, 0)
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def emit_value(value: Any) -> str:
    """One value as HCL text (multi-line values indented for the top level)."""
    return "\n".join(value_lines(value, 0))


def attributes(values: Mapping[str, Any]) -> list[Item]:
    """A dict as consecutive attributes (one aligned run)."""
    return [Attribute(k, v) for k, v in values.items()]
