r"""The one writer of HCL2 value text, and files formatted the way `packer fmt` formats them.

Every HCL packwrap writes goes through here (blueprint templates via their Jinja filters,
`convert`, the pkrvars updater used by fetch-iso and convert), so there is one quoting rule:

- `\ " \n \r \t` are escaped as in HCL2, every other control character as `\uNNNN`;
- a literal `${` is written `\u0024{` and a literal `%{` is written `\u0025{`. Packer reads
  that exactly like HCL's `$${` / `%%{` (checked with `packer inspect`), and unlike those
  it reads back through python-hcl2 8.x (packwrap's reader) in every position: its
  `$${` token needs a closing `}` further on, so `"x$${y"` does not parse.

Layout is hclwrite's: 2-space indent per nesting level, and the `=` of a run of
single-line attributes aligned by template/hcl_fmt.py (the one alignment rule, also used
by the pkrvars updater and blueprint rendering).

    emit([Attribute("a", 1), Blank(), Block("source", ["qemu", "x"], [...])])

Values: str (a literal, quoted by the rule above), int, float, bool, None, list, dict,
or Expr("var.x") for raw HCL expression text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from packwrap.template.hcl_fmt import realign

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


# A literal `${` / `%{` (see the module docstring for why not `$${` / `%%{`).
_LITERAL_MARKS = (("${", "\\u0024{"), ("%{", "\\u0025{"))


def _escape(s: str) -> str:
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
    return "".join(out)


def quote(s: str, template: bool = False) -> str:
    """An HCL quoted string whose value is `s` literally, or with `template=True` a string
    template whose `${...}` / `%{...}` sequences stay live."""
    return f'"{_escape(s) if template else template_fragment(s, before_interpolation=False)}"'


def template_fragment(s: str, before_interpolation: bool = True) -> str:
    """The inside of a quoted template that reads as the literal text `s`, safe to put
    right before a live `${...}` or more text: a trailing `$` or `%` is escaped too, or
    it would join what follows into `$${` (an escape) or `${` / `%{` (live)."""
    text = _escape(s)
    for mark, escaped in _LITERAL_MARKS:
        text = text.replace(mark, escaped)
    if before_interpolation and text.endswith(("$", "%")):
        text = text[:-1] + ("\\u0024" if text.endswith("$") else "\\u0025")
    return text


def key(name: str) -> str:
    """An object key or attribute name: bare when it is an identifier."""
    if _IDENT.match(name) and name not in _KEYWORDS:
        return name
    return quote(name)


def _scalar(value: Any, template: bool = False) -> str | None:
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
        return quote(value, template)
    return None


def literal(value: Any, template: bool = False) -> str:
    """A single-line HCL literal for a Python value (`template`: strings interpolate)."""
    text = _scalar(value, template)
    if text is not None:
        return text
    if isinstance(value, Mapping):
        items = ", ".join(f"{key(k)} = {literal(v, template)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(v, template) for v in value) + "]"
    raise TypeError(f"cannot write a {type(value).__name__} as HCL")


def multiline_list(values: list[Any], indent: str = "  ", template: bool = False) -> str:
    """A list with one element per line (boot_command style), trailing comma included."""
    if not values:
        return "[]"
    inner = "".join(f"{indent}  {literal(v, template)},\n" for v in values)
    return "[\n" + inner + indent + "]"


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
    """A body's lines with single spaces around `=`; hcl_fmt.realign aligns them."""
    pad = INDENT * level
    out: list[str] = []
    for item in items:
        if isinstance(item, Attribute):
            name = key(item.name) if keys else _attr_name(item.name)
            lines = value_lines(item.value, level)
            out.append(f"{pad}{name} = {lines[0]}")
            out.extend(lines[1:])
        elif isinstance(item, Block):
            out.extend(block_lines(item, level))
        elif isinstance(item, Blank):
            out.append("")
        elif isinstance(item, Comment):
            out.append(f"{pad}# {item.text}".rstrip() if item.text else f"{pad}#")
        else:
            raise TypeError(f"not an HCL body item: {item!r}")
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
    return realign("\n".join(lines) + "\n")


def emit_value(value: Any) -> str:
    """One value as HCL text (multi-line values indented for the top level)."""
    return realign("\n".join(value_lines(value, 0)))


def attributes(values: Mapping[str, Any]) -> list[Item]:
    """A dict as consecutive attributes (one aligned run)."""
    return [Attribute(k, v) for k, v in values.items()]
