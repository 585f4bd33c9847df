"""HCL text for blueprints: type expressions, and HCL -> HCL JSON.

Value literals come from packwrap.template.hcl_emit (the one HCL value writer); blueprint
templates reach them through the `hcl`, `hcl_list` and `quote` Jinja filters, and write
`name = value` with single spaces; template/hcl_fmt.py's `fmt` then aligns the `=` of
consecutive single-line attributes the way hclwrite (`packer fmt`) does, so templates stay
readable and the output is fmt-clean. `to_json` turns the rendered HCL into Packer's JSON
syntax for `--format json`, so one template serves both formats.
"""

from __future__ import annotations

import json
import re
from typing import Any


def type_expr(text: str) -> str:
    """A type constraint spaced like `packer fmt`: list(object({ a = string, b = number }))."""
    out = re.sub(r"\s+", "", text)
    out = out.replace("=", " = ").replace(",", ", ").replace("{", "{ ").replace("}", " }")
    return out.replace("{  }", "{}")


# --- HCL -> HCL JSON ---------------------------------------------------------------------


_LITERAL_MARK = re.compile(r"(?<!\\)((?:\\\\)*)\\u00(24|25)\{")


def _unquote(text: str) -> Any:
    """python-hcl2 keeps quotes on strings and wraps expressions as ${...}."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        # HCL escapes are JSON's. JSON strings are templates too: a literal `${` that
        # hcl_emit wrote `\u0024{` must become `$${` there (and `%{` -> `%%{`).
        text = _LITERAL_MARK.sub(lambda m: m[1] + ("$${" if m[2] == "24" else "%%{"), text)
        return json.loads(text)
    return text


def _value(v: Any, key: str | None = None) -> Any:
    if isinstance(v, str):
        if key == "type":  # a type expression: JSON syntax wants it as a bare string
            return v[2:-1] if v.startswith("${") and v.endswith("}") else v
        return _unquote(v)
    if isinstance(v, list):
        return [_value(x) for x in v]
    if isinstance(v, dict):
        return {_label(k): _value(x) for k, x in v.items() if not k.startswith("__")}
    return v


def _label(key: str) -> str:
    return _unquote(key) if key.startswith('"') else key


def _is_block_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(x, dict) and _contains_block(x) for x in value)
    )


def _contains_block(d: dict) -> bool:
    if d.get("__is_block__"):
        return True
    return (
        len(d) == 1
        and isinstance(next(iter(d.values())), dict)
        and _contains_block(next(iter(d.values())))
    )


def _block_body(d: dict) -> dict:
    body: dict[str, Any] = {}
    for key, value in d.items():
        if key.startswith("__"):  # python-hcl2 markers: __is_block__, __comments__
            continue
        if _is_block_list(value):
            converted = [_labelled(x) for x in value]
            body[_label(key)] = converted[0] if len(converted) == 1 else converted
        else:
            body[_label(key)] = _value(value, key)
    return body


def _labelled(d: dict) -> dict:
    """{'"qemu"': {'"name"': {...block...}}} -> {"qemu": {"name": {...}}}; no labels: body."""
    if d.get("__is_block__"):
        return _block_body(d)
    ((key, inner),) = d.items()
    return {_label(key): _labelled(inner)}


def _merge_top(items: list[dict]) -> Any:
    """Several top-level blocks of one type: merge by label where labels differ."""
    merged: dict[str, Any] = {}
    for item in items:
        for k, v in item.items():
            if k in merged and isinstance(merged[k], dict) and isinstance(v, dict):
                merged[k] = {**merged[k], **v}
            elif k in merged:
                return items
            else:
                merged[k] = v
    return merged


def to_json(hcl_text: str) -> str:
    """Packer HCL2 JSON syntax for an HCL file (the subset blueprints emit)."""
    import hcl2

    data = hcl2.loads(hcl_text)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key.startswith("__"):
            continue
        if _is_block_list(value):
            blocks = [_labelled(x) for x in value]
            if key == "build" or key == "packer":  # unlabelled blocks
                out[key] = blocks[0] if len(blocks) == 1 else blocks
            else:
                out[key] = _merge_top(blocks)
        else:
            out[key] = _value(value, key)
    return json.dumps(out, indent=2, ensure_ascii=False) + "\n"
