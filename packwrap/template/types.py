"""Variable type constraints: `string`, `list(string)`, `object({...})` and friends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from packwrap.template.evaluate import FuncError, to_bool, to_number, to_string, type_name
from packwrap.template.expr import Node

# A type is "string" | "number" | "bool" | "any" | ("list"|"set"|"map", T)
#   | ("object", {name: T}) | ("tuple", [T, ...]).
Type = Any
PRIMITIVES = ("string", "number", "bool", "any")


class TypeSyntaxError(Exception):
    pass


def parse_type(node: Node) -> Type:
    if node.kind == "var" and node.args[0] in PRIMITIVES:
        return node.args[0]
    if node.kind == "var" and node.args[0] in ("list", "set", "map"):
        return (node.args[0], "any")
    if node.kind == "template" and len(node.args[0]) == 1 and isinstance(node.args[0][0], Node):
        return parse_type(node.args[0][0])  # JSON syntax: "${list(string)}"
    if node.kind == "call":
        name, args, _ = node.args
        if name in ("list", "set", "map") and len(args) == 1:
            return (name, parse_type(args[0]))
        if name == "object" and len(args) == 1 and args[0].kind == "object":
            fields = {}
            for key, value in args[0].args[0]:
                if key.kind != "lit":
                    raise TypeSyntaxError("object type attribute names must be plain names")
                fields[key.args[0]] = parse_type(value)
            return ("object", fields)
        if name == "tuple" and len(args) == 1 and args[0].kind == "tuple":
            return ("tuple", [parse_type(a) for a in args[0].args[0]])
    raise TypeSyntaxError(
        "unsupported type constraint (use string, number, bool, any, list(T), set(T), "
        "map(T), object({...}) or tuple([...]))"
    )


def describe(t: Type) -> str:
    if isinstance(t, str):
        return t
    kind, inner = t
    if kind == "object":
        return "object({" + ", ".join(f"{k} = {describe(v)}" for k, v in inner.items()) + "})"
    if kind == "tuple":
        return "tuple([" + ", ".join(describe(v) for v in inner) + "])"
    return f"{kind}({describe(inner)})"


def is_primitive(t: Type) -> bool:
    return isinstance(t, str)


def convert(value: Any, t: Type) -> Any:
    """value converted to type t, or FuncError saying why not."""
    if value is None or t == "any":
        return value
    if t == "string":
        if isinstance(value, list | Mapping):
            raise FuncError(f"expected string, got {type_name(value)}")
        return to_string(value)
    if t == "number":
        return to_number(value)
    if t == "bool":
        return to_bool(value)
    return _convert_collection(value, t)


def _convert_collection(value: Any, t: Type) -> Any:
    kind, inner = t
    if kind in ("list", "set"):
        if not isinstance(value, list):
            raise FuncError(f"expected {describe(t)}, got {type_name(value)}")
        out = [_at(i, lambda v=v: convert(v, inner)) for i, v in enumerate(value)]
        if kind == "set":
            out = [v for i, v in enumerate(out) if v not in out[:i]]
        return out
    if kind == "map":
        if not isinstance(value, Mapping):
            raise FuncError(f"expected {describe(t)}, got {type_name(value)}")
        return {k: _at(k, lambda v=v: convert(v, inner)) for k, v in value.items()}
    if kind == "object":
        if not isinstance(value, Mapping):
            raise FuncError(f"expected {describe(t)}, got {type_name(value)}")
        missing = [k for k in inner if k not in value]
        if missing:
            raise FuncError(f"attribute {missing[0]!r} is required in {describe(t)}")
        return {k: _at(k, lambda k=k: convert(value[k], inner[k])) for k in inner}
    if kind == "tuple":
        if not isinstance(value, list) or len(value) != len(inner):
            raise FuncError(f"expected {describe(t)}, got {type_name(value)}")
        return [_at(i, lambda i=i: convert(value[i], inner[i])) for i in range(len(inner))]
    raise FuncError(f"unknown type {t!r}")


def _at(where: Any, fn: Any) -> Any:
    try:
        return fn()
    except FuncError as exc:
        raise FuncError(f"[{where!r}]: {exc}") from None
