"""update_pkrvars: set variables in a *.pkrvars.hcl file, keeping everything else.

Existing assignments get their value replaced in place (comments and other lines
stay); new ones are appended. The result is re-aligned the way `packer fmt`
aligns `=` and trailing comments, and written atomically (the file keeps its mode).
A *.pkrvars.json file is rewritten as JSON (2-space indent, key order kept).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packwrap.atomicfile import atomic_write
from packwrap.errors import PackwrapError
from packwrap.template.hcl_emit import attributes, emit, emit_value

_OPEN, _CLOSE = "([{", ")]}"
_HEREDOC = re.compile(r"<<-?([A-Za-z_][A-Za-z0-9_-]*)\s*$")


def update_pkrvars(path: str | os.PathLike[str], values: Mapping[str, Any]) -> None:
    """Set `values` in the pkrvars file at path (created when missing)."""
    p = Path(path)
    is_json = p.name.endswith(".json")
    if not p.exists():
        _write(p, _json_text(dict(values)) if is_json else emit(attributes(values)))
        return
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PackwrapError(f"cannot read: {exc}", file=str(p)) from None
    if is_json:
        from packwrap.template.json_reader import load_json

        data = load_json(text, str(p))
        if not isinstance(data, dict):
            raise PackwrapError("a variable file holds a JSON object", file=str(p), line=1)
        _write(p, _json_text({**data, **values}))
        return
    _write(p, set_values(text, values, str(p)))


def _write(path: Path, text: str) -> None:
    # A user's variable file keeps its mode (a 0600 file with a password hash stays 0600).
    atomic_write(path, text, mode=0o644, keep_mode=True)


def _json_text(data: dict) -> str:
    import json

    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def set_values(text: str, values: Mapping[str, Any], file: str = "<pkrvars>") -> str:
    from lark import Tree
    from lark.exceptions import UnexpectedInput

    from packwrap.template.hcl_reader import parse_tree

    try:
        tree = parse_tree(text)
    except UnexpectedInput as exc:
        raise PackwrapError("HCL syntax error", file=file, line=exc.line) from None
    spans: dict[str, tuple[int, int]] = {}
    body = tree.children[0] if tree.children else None
    for child in body.children if isinstance(body, Tree) else []:
        if isinstance(child, Tree) and child.data == "attribute":
            name = str(child.children[0].children[0])
            expr = child.children[-1]
            spans[name] = (expr.meta.start_pos, expr.meta.end_pos)
        elif isinstance(child, Tree) and child.data == "block":
            raise PackwrapError("a variable file holds no blocks", file=file, line=child.meta.line)
    # Replace from the end so earlier offsets stay valid.
    edits = sorted(
        ((spans[k], emit_value(v)) for k, v in values.items() if k in spans), reverse=True
    )
    for (start, end), new in edits:
        text = text[:start] + new + text[end:]
    added = {k: v for k, v in values.items() if k not in spans}
    if added:
        if text and not text.endswith("\n"):
            text += "\n"
        text += emit(attributes(added))
    return realign(text)


@dataclass
class _Line:
    text: str
    lead: str = ""  # indentation + name (before the aligned "=")
    assign: str | None = None  # "= value" part, None when the line has no aligned "="
    comment: str | None = None  # trailing comment, when the line also has code
    body: str = ""  # code part (when not an assignment)
    inside: bool = False  # heredoc content: hclwrite sees it as part of the opening line


def _scan(code: str) -> tuple[int | None, int | None, int, str | None]:
    """(index of a top-level '=', index of a trailing comment, net brackets, heredoc marker)."""
    eq = comment = None
    depth = 0
    net_after_eq = 0
    i = 0
    in_str = False
    interp = 0
    while i < len(code):
        c = code[i]
        if in_str:
            if c == "\\":
                i += 2
                continue
            if code.startswith(("$${", "%%{"), i):  # escapes: literal text
                i += 3
                continue
            if code.startswith("${", i) or code.startswith("%{", i):
                interp += 1
                i += 2
                continue
            if c == "}" and interp:
                interp -= 1
            elif c == '"' and not interp:
                in_str = False
            i += 1
            continue
        if c == '"':
            in_str = True
        elif c == "#" or code.startswith("//", i):
            comment = i
            break
        elif c in _OPEN:
            depth += 1
            if eq is not None:
                net_after_eq += 1
        elif c in _CLOSE:
            depth -= 1
            if eq is not None:
                net_after_eq -= 1
        elif (
            c == "="
            and eq is None
            and depth == 0
            and code[i + 1 : i + 2] not in ("=", ">")
            and code[i - 1 : i] not in ("=", "!", "<", ">")
            and code[:i].strip()
        ):
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
