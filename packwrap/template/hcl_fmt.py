"""`packer fmt`'s alignment (hclwrite's rule) applied to HCL text as written.

In a run of consecutive lines that each hold a whole single-line `name = value`, the `=`
signs line up one space after the longest name, and trailing comments line up one space
after the longest code. A blank line, a comment line, a block header or closing brace,
or a value spanning several lines ends a run; heredoc content belongs to its opening
line. Everything else (indentation, comments, values) stays as written, so the pkrvars
updater keeps a user's file, and blueprint templates can write single spaces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_OPEN, _CLOSE = "([{", ")]}"
_HEREDOC = re.compile(r"<<-?([A-Za-z_][A-Za-z0-9_-]*)\s*$")


def fmt(text: str) -> str:
    """Aligned like `packer fmt`, trailing space trimmed, runs of blank lines collapsed,
    no blank line right after `{` or before `}`, one newline at the end."""
    cleaned: list[str] = []
    for line in (x.rstrip() for x in text.splitlines()):
        if not line and (not cleaned or not cleaned[-1] or cleaned[-1].endswith("{")):
            continue
        if line.strip().startswith("}") and cleaned and not cleaned[-1]:
            cleaned.pop()
        cleaned.append(line)
    while cleaned and not cleaned[-1]:
        cleaned.pop()
    return realign("\n".join(cleaned) + "\n")


@dataclass
class _Line:
    text: str
    lead: str = ""  # indentation + name (before the aligned "=")
    assign: str | None = None  # "= value" part, None when the line has no aligned "="
    comment: str | None = None  # trailing comment, when the line also has code
    body: str = ""  # code part (when not an assignment)
    inside: bool = False  # heredoc content: hclwrite sees it as part of the opening line


def _string_end(code: str, i: int) -> int:
    """Index just past the quoted string (or template) that opens at code[i]; len(code)
    when it does not end on this line."""
    i += 1
    interp = 0
    while i < len(code):
        if code[i] == "\\":
            i += 2
        elif code.startswith(("$${", "%%{"), i):  # escapes: literal text
            i += 3
        elif code.startswith(("${", "%{"), i):
            interp += 1
            i += 2
        elif code[i] == "}" and interp:
            interp -= 1
            i += 1
        elif code[i] == '"' and not interp:
            return i + 1
        else:
            i += 1
    return len(code)


def _is_assign(code: str, i: int) -> bool:
    """code[i] is `=` of an assignment, not of `==`, `!=`, `<=`, `>=` or `=>`."""
    return (
        code[i + 1 : i + 2] not in ("=", ">")
        and code[i - 1 : i] not in ("=", "!", "<", ">")
        and bool(code[:i].strip())
    )


def _scan(code: str) -> tuple[int | None, int | None, int, str | None]:
    """(index of a top-level '=', index of a trailing comment, net brackets, heredoc marker)."""
    eq = comment = None
    depth = 0
    net_after_eq = 0
    i = 0
    while i < len(code):
        c = code[i]
        if c == '"':
            i = _string_end(code, i)
            continue
        if c == "#" or code.startswith("//", i):
            comment = i
            break
        if c in _OPEN or c in _CLOSE:
            step = 1 if c in _OPEN else -1
            depth += step
            net_after_eq += step if eq is not None else 0
        elif c == "=" and eq is None and depth == 0 and _is_assign(code, i):
            eq = i
        elif code.startswith("<<", i):
            m = _HEREDOC.match(code, i)
            if m:
                return eq, comment, net_after_eq, m.group(1)
        i += 1
    return eq, comment, net_after_eq, None


def realign(text: str) -> str:
    """Align `=` and trailing comments like hclwrite; other whitespace is kept."""
    lines: list[_Line] = []
    heredoc: str | None = None
    for raw in text.split("\n"):
        line = _Line(raw.rstrip() if heredoc is None else raw)
        lines.append(line)
        if heredoc is not None:
            line.body = raw
            line.inside = True
            if raw.strip() == heredoc:
                heredoc = None
            continue
        code = line.text
        eq, comment, net, marker = _scan(code)
        if comment is not None and code[:comment].strip():
            line.comment = code[comment:]
            code = code[:comment].rstrip()
        if eq is not None and (net == 0 or marker):
            line.lead = code[:eq].rstrip()
            line.assign = "= " + code[eq + 1 :].strip()
        else:
            line.body = code
        heredoc = marker
    _align(lines)
    return "\n".join(_render(x) for x in lines)


def _align(lines: list[_Line]) -> None:
    run: list[_Line] = []

    def close() -> None:
        width = max((len(x.lead) for x in run), default=0)
        for x in run:
            x.lead = x.lead.ljust(width)
        run.clear()

    for x in lines:
        if x.inside:
            continue
        if x.assign is None:
            close()
        else:
            run.append(x)
    close()
    # Trailing comments: aligned one space after the longest code in a run.
    crun: list[_Line] = []

    def close_comments() -> None:
        width = max((len(_code(x)) for x in crun), default=0)
        for x in crun:
            x.comment = " " * (width - len(_code(x)) + 1) + (x.comment or "").strip()
        crun.clear()

    for x in lines:
        if x.inside:
            continue
        if x.comment is None:
            close_comments()
        else:
            crun.append(x)
    close_comments()


def _code(x: _Line) -> str:
    return f"{x.lead} {x.assign}" if x.assign is not None else x.body


def _render(x: _Line) -> str:
    if x.assign is None and x.comment is None:
        return x.body
    return _code(x) + (x.comment or "")
