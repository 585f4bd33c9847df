"""update_pkrvars: set variables in a *.pkrvars.hcl file, keeping everything else.

Existing assignments get their value replaced in place (comments and other lines
stay); new ones are appended. The result is re-aligned the way `packer fmt`
aligns `=` and trailing comments (hcl_fmt.realign), and written atomically (the file
keeps its mode).
A *.pkrvars.json file is rewritten as JSON (2-space indent, key order kept).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packwrap.atomicfile import atomic_write
from packwrap.errors import PackwrapError
from packwrap.template.hcl_emit import attributes, emit, emit_value
from packwrap.template.hcl_fmt import realign


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
