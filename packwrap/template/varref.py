"""Which template variable an expression is, or uses: for problems that name where a value
was set (the var-file line, -var, the default) rather than only the template line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from packwrap.template.expr import Node

_LEGACY_USER = re.compile(r"\{\{\s*user\s+(?:`([^`]*)`|\"([^\"]*)\")\s*\}\}")


def variable_ref(node: Node) -> tuple[str, bool] | None:
    """(name, bare) when the expression uses exactly one variable; bare when it is just
    that variable (`var.x`, `"${var.x}"`, legacy `{{user `x`}}`). None otherwise."""
    if node.kind == "legacy":
        text = str(node.args[0])
        names = {a if a is not None else b for a, b in _LEGACY_USER.findall(text)}
        whole = _LEGACY_USER.fullmatch(text.strip())
        return (names.pop(), whole is not None) if len(names) == 1 else None
    names = set(_var_names(node))
    if len(names) != 1:
        return None
    return names.pop(), _bare(node)


def _bare(node: Node) -> bool:
    if node.kind == "template":
        parts = node.args[0]
        return len(parts) == 1 and isinstance(parts[0], Node) and _bare(parts[0])
    if node.kind == "paren":
        return _bare(node.args[0])
    return _is_var_attr(node)


def _is_var_attr(node: Node) -> bool:
    target = node.args[0] if node.kind == "getattr" else None
    return isinstance(target, Node) and target.kind == "var" and target.args[0] == "var"


def _var_names(item: Any) -> Iterator[str]:
    if isinstance(item, Node):
        if _is_var_attr(item):
            yield str(item.args[1])
            return
        for arg in item.args:
            yield from _var_names(arg)
    elif isinstance(item, list | tuple):
        for sub in item:
            yield from _var_names(sub)
