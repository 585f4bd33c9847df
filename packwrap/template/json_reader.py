"""Read a .pkr.json / .pkrvars.json file (HCL2's JSON syntax) into a syntax.Body."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from packwrap.errors import PackwrapError
from packwrap.template import jsonpos
from packwrap.template.expr import ExprSyntaxError, Node, parse_expression, parse_template
from packwrap.template.syntax import Attr, Block, Body

# block type -> (number of labels, nested block types); None is the file's top level.
_BLOCKS: dict[str | None, dict[str, int]] = {
    None: {
        "variable": 1,
        "variables": 0,
        "locals": 0,
        "local": 1,
        "source": 2,
        "build": 0,
        "packer": 0,
        "data": 2,
    },
    "variable": {"validation": 0},
    "build": {
        "source": 1,
        "provisioner": 1,
        "error-cleanup-provisioner": 1,
        "post-processor": 1,
        "post-processors": 0,
    },
    "post-processors": {"post-processor": 1},
}
# Attributes whose JSON string is an expression, not a template.
_EXPRESSION_ATTRS = {("variable", "type")}


def load_json(text: str, file: str) -> Any:
    try:
        return jsonpos.loads(text)
    except jsonpos.JsonError as exc:
        raise PackwrapError(exc.message, file=file, line=exc.line) from None


def parse_json(text: str, file: str, *, varfile: bool = False) -> Body:
    data = load_json(text, file)
    if not isinstance(data, dict):
        raise PackwrapError("the file must hold a JSON object", file=file, line=1)
    if varfile:
        return _literal_body(data, file)
    return _body(data, file, None, top=True)


def _literal_body(obj: dict, file: str) -> Body:
    """A *.pkrvars.json file: Packer evaluates it with no context, and HCL's JSON syntax
    then takes strings literally ("${b}" stays "${b}"), unlike a .pkrvars.hcl file."""
    body = Body(file=file, line=getattr(obj, "line", 1))
    key_lines = getattr(obj, "key_lines", {})
    for key, value in obj.items():
        if key == "//":
            continue
        line = key_lines.get(key, body.line)
        body.attrs[key] = Attr(key, Node("lit", 0, (value,), text=_text(value)), file, line)
    return body


def value_node(value: Any, file: str, line: int) -> Node:
    """A JSON value as an expression: strings are templates ("${var.x}")."""
    if isinstance(value, str):
        try:
            node = parse_template(value)
        except ExprSyntaxError as exc:
            raise PackwrapError(f"in {value!r}: {exc.message}", file=file, line=line) from None
        return node
    if isinstance(value, list):
        items = [value_node(v, file, getattr(value, "line", line)) for v in value]
        return Node("tuple", 0, (items,), text=_text(value))
    if isinstance(value, dict):
        kl = getattr(value, "key_lines", {})
        pairs = [
            (Node("lit", 0, (k,)), value_node(v, file, kl.get(k, line)))
            for k, v in value.items()
            if k != "//"
        ]
        return Node("object", 0, (pairs,), text=_text(value))
    return Node("lit", 0, (value,), text=_text(value))


def _text(value: Any) -> str:
    import json

    return json.dumps(value)


def _body(obj: dict, file: str, block_type: str | None, *, top: bool = True) -> Body:
    body = Body(file=file, line=getattr(obj, "line", 1))
    nested = _BLOCKS.get(block_type, {}) if top or block_type else {}
    key_lines = getattr(obj, "key_lines", {})
    for key, value in obj.items():
        line = key_lines.get(key, body.line)
        if key == "//":
            continue  # HCL JSON comment
        if key in nested:
            for labels, inner in _expand(value, nested[key], file, line, key):
                inner_line = getattr(inner, "line", line)  # as _body reads it
                body.blocks.append(Block(key, labels, _body(inner, file, key), file, inner_line))
            continue
        if (block_type, key) in _EXPRESSION_ATTRS and isinstance(value, str):
            try:
                node = parse_expression(value)
            except ExprSyntaxError as exc:
                raise PackwrapError(f"{key}: {exc.message}", file=file, line=line) from None
        else:
            node = value_node(value, file, line)
            node.text = node.text or _text(value)
        body.attrs[key] = Attr(key, node, file, line)
    return body


def _expand(
    value: Any, nlabels: int, file: str, line: int, what: str
) -> Iterator[tuple[list[str], dict[str, Any]]]:
    """Walk `nlabels` levels of label objects down to block bodies (arrays repeat)."""
    if isinstance(value, list):
        for item in value:
            yield from _expand(item, nlabels, file, getattr(item, "line", line), what)
        return
    if not isinstance(value, dict):
        raise PackwrapError(f"{what} must be a JSON object", file=file, line=line)
    if nlabels == 0:
        yield [], value
        return
    for label, inner in value.items():
        if label == "//":
            continue
        ln = value.key_lines.get(label, line) if hasattr(value, "key_lines") else line
        for labels, body in _expand(inner, nlabels - 1, file, ln, what):
            yield [label, *labels], body
