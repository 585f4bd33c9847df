"""Evaluate parsed HCL expressions against a scope (var, local, path, ...)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packwrap.template.expr import Node


class EvalError(Exception):
    """An evaluation error at character offset `pos` of the expression text."""

    def __init__(self, message: str, pos: int | None = None):
        super().__init__(message)
        self.message = message
        self.pos = pos


class FuncError(Exception):
    """Raised by a function implementation; becomes an EvalError at the call."""


@dataclass
class Scope:
    roots: Mapping[str, Any]  # "var", "local", "path", or a templatefile's own vars
    functions: Mapping[str, Callable[..., Any]]
    cwd: Path
    root_dir: Path  # path.root: where the template lives
    env: Mapping[str, str] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)  # per-load memo (timestamp)

    def child(self, roots: Mapping[str, Any]) -> Scope:
        return Scope(roots, self.functions, self.cwd, self.root_dir, self.env, self.state)


class Forbidden:
    """A root name that exists but may not be used here (var.x in a variable default)."""

    def __init__(self, message: str):
        self.message = message


class LazyMap(Mapping[str, Any]):
    """name -> value computed on first use (locals), with cycle detection."""

    def __init__(self, what: str, thunks: Mapping[str, Callable[[], Any]]):
        self.what = what
        self.thunks = dict(thunks)
        self.computed: dict[str, Any] = {}  # not `values`: that is Mapping.values()
        self.busy: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        if name in self.computed:
            return self.computed[name]
        if name not in self.thunks:
            raise KeyError(name)
        if name in self.busy:
            raise EvalError(f"{self.what}.{name} refers to itself (a cycle of references)")
        self.busy.add(name)
        try:
            value = self.thunks[name]()
        finally:
            self.busy.discard(name)
        self.computed[name] = value
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.thunks)

    def __len__(self) -> int:
        return len(self.thunks)


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    if value is None:
        raise FuncError("a null value cannot be used as a string")
    raise FuncError(f"a {type_name(value)} value cannot be used as a string")


def string_param(value: Any, param: str = "str") -> str:
    """A function's string parameter, with cty's message for a collection or null."""
    if value is None:
        raise FuncError(f'Invalid value for "{param}" parameter: argument must not be null.')
    if isinstance(value, list | Mapping):
        raise FuncError(f'Invalid value for "{param}" parameter: string required.')
    return to_string(value)


def to_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise FuncError("a bool value cannot be used as a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                # Python reads "nan", "inf" and "1e400" (inf); HCL numbers are finite.
                if math.isfinite(number):
                    return number
    raise FuncError(f"{_short_repr(value)} is not a number")


def _finite(n: float) -> float:
    if not math.isfinite(n):
        raise FuncError("number out of range")
    return n


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise FuncError(f"{value!r} is not a bool")


def _norm(n: int | float) -> int | float:
    if isinstance(n, float):
        _finite(n)
        if n.is_integer() and abs(n) < 2**53:
            return int(n)
    return n


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return a == b


def evaluate(node: Node, scope: Scope) -> Any:
    try:
        return _eval(node, scope)
    except FuncError as exc:
        raise EvalError(str(exc), node.pos) from None


def _eval(node: Node, scope: Scope) -> Any:  # noqa: C901 -- one rule per node kind
    k, a = node.kind, node.args
    if k == "lit":
        return a[0]
    if k == "paren":
        return _eval(a[0], scope)
    if k == "template":
        return _template(a[0], scope, node)
    if k == "tuple":
        return [_eval(item, scope) for item in a[0]]
    if k == "object":
        out: dict[str, Any] = {}
        for key_node, value_node in a[0]:
            key = _at(key_node, lambda kn=key_node: to_string(_eval(kn, scope)))
            out[key] = _eval(value_node, scope)
        return out
    if k == "var":
        name = a[0]
        if name not in scope.roots:
            hint = _hint(name, scope.roots)
            raise EvalError(f"unknown name {name!r}{hint}", node.pos)
        value = scope.roots[name]
        if isinstance(value, Forbidden):
            raise EvalError(value.message, node.pos)
        return value
    if k == "getattr":
        target_node, name = a
        target = _eval(target_node, scope)
        return _get(target, name, target_node, node)
    if k == "index":
        target = _eval(a[0], scope)
        key = _eval(a[1], scope)
        if isinstance(target, list):
            i = _at(a[1], lambda: to_number(key))
            if not isinstance(i, int) or not 0 <= i < len(target):
                raise EvalError(f"index {key!r} out of range (length {len(target)})", node.pos)
            return target[i]
        if isinstance(target, Mapping):
            return _get(target, _at(a[1], lambda: to_string(key)), a[0], node)
        raise EvalError(f"cannot index a {type_name(target)} value", node.pos)
    if k == "call":
        return _call(node, scope)
    if k == "not":
        return not _at(a[0], lambda: to_bool(_eval(a[0], scope)))
    if k == "neg":
        return _norm(-_at(a[0], lambda: to_number(_eval(a[0], scope))))
    if k == "binop":
        return _binop(node, scope)
    if k == "cond":
        cond = _at(a[0], lambda: to_bool(_eval(a[0], scope)))
        return _eval(a[1] if cond else a[2], scope)
    if k == "for":
        return _for(node, scope)
    if k == "legacy":
        from packwrap.template.legacy import render

        try:
            return render(a[0], scope)
        except EvalError as exc:
            raise EvalError(exc.message, node.pos) from None
    raise EvalError(f"unsupported expression ({k})", node.pos)


def _at(node: Node, fn: Callable[..., Any]) -> Any:
    """Run fn, turning a FuncError into an EvalError at node.

    fn is called with no arguments; it is typed `...` because callers bind loop
    variables as lambda defaults (`lambda c=cond: ...`), which mypy cannot infer."""
    try:
        return fn()
    except FuncError as exc:
        raise EvalError(str(exc), node.pos) from None


def _hint(name: str, names: Any) -> str:
    close = difflib.get_close_matches(name, list(names), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


_ROOT_WORDS = {"var": "variable", "local": "local value", "path": "path attribute"}


def _get(target: Any, name: str, target_node: Node, node: Node) -> Any:
    if isinstance(target, Mapping):
        try:
            return target[name]
        except KeyError:
            if target_node.kind == "var" and target_node.args[0] in _ROOT_WORDS:
                root = target_node.args[0]
                what = _ROOT_WORDS[root]
                hint = _hint(name, target)
                verb = "is not declared" if root == "var" else "is not defined"
                raise EvalError(f"{what} {root}.{name} {verb}{hint}", node.pos) from None
            raise EvalError(
                f"object has no attribute {name!r}{_hint(name, target)}", node.pos
            ) from None
    raise EvalError(f"cannot read .{name} of a {type_name(target)} value", node.pos)


def _template(parts: list, scope: Scope, node: Node) -> Any:
    if len(parts) == 1 and isinstance(parts[0], Node):
        return _eval(parts[0], scope)  # "${x}" is x itself, of any type
    return "".join(_render(parts, scope))


def _render(parts: list, scope: Scope) -> Iterator[str]:
    for part in parts:
        if isinstance(part, str):
            yield part
        elif isinstance(part, Node):
            value = _eval(part, scope)
            yield _at(part, lambda v=value: to_string(v))
        elif part[0] == "if":
            _, cond, then, other = part
            ok = _at(cond, lambda c=cond: to_bool(_eval(c, scope)))
            yield from _render(then if ok else other, scope)
        else:
            _, key_name, value_name, coll_node, body = part
            for key, value in _items(_eval(coll_node, scope), coll_node):
                roots = dict(scope.roots)
                roots[value_name] = value
                if key_name:
                    roots[key_name] = key
                yield from _render(body, scope.child(roots))


def _items(collection: Any, node: Node) -> list[tuple[Any, Any]]:
    if isinstance(collection, list):
        return list(enumerate(collection))
    if isinstance(collection, Mapping):
        return [(k, collection[k]) for k in sorted(collection)]
    raise EvalError(f"cannot iterate over a {type_name(collection)} value", node.pos)


def _for(node: Node, scope: Scope) -> Any:
    close, key_name, value_name, coll_node, key_expr, value_expr, cond = node.args
    results_list: list[Any] = []
    results_map: dict[str, Any] = {}
    for key, value in _items(_eval(coll_node, scope), coll_node):
        roots = dict(scope.roots)
        roots[value_name] = value
        if key_name:
            roots[key_name] = key
        inner = scope.child(roots)
        if cond is not None and not _at(cond, lambda c=cond, s=inner: to_bool(_eval(c, s))):
            continue
        if close == "]":
            results_list.append(_eval(value_expr, inner))
        else:
            k = _at(key_expr, lambda s=inner: to_string(_eval(key_expr, s)))
            results_map[k] = _eval(value_expr, inner)
    return results_list if close == "]" else results_map


def _binop(node: Node, scope: Scope) -> Any:
    op, left_node, right_node = node.args
    if op in ("&&", "||"):
        left = _at(left_node, lambda: to_bool(_eval(left_node, scope)))
        if op == "&&" and not left:
            return False
        if op == "||" and left:
            return True
        return _at(right_node, lambda: to_bool(_eval(right_node, scope)))
    left = _eval(left_node, scope)
    right = _eval(right_node, scope)
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    x = _at(left_node, lambda: to_number(left))
    y = _at(right_node, lambda: to_number(right))
    if op == "<":
        return x < y
    if op == ">":
        return x > y
    if op == "<=":
        return x <= y
    if op == ">=":
        return x >= y
    if op in ("/", "%") and y == 0:
        raise EvalError("division by zero", node.pos)
    return _at(node, lambda: _arith(op, x, y))


def _arith(op: str, x: int | float, y: int | float) -> int | float:
    try:
        if op == "+":
            return _norm(x + y)
        if op == "-":
            return _norm(x - y)
        if op == "*":
            return _norm(x * y)
        if op == "/":
            return _norm(x / y)
        return _norm(x - y * int(x / y))  # HCL's % truncates toward zero, like Go
    except OverflowError:  # int / int beyond a float
        raise FuncError("number out of range") from None


def _call(node: Node, scope: Scope) -> Any:
    name, arg_nodes, expand = node.args
    if name in ("try", "can"):
        return _try_can(name, arg_nodes, scope, node)
    if name == "convert":
        return _convert(arg_nodes, scope, node)
    fn = scope.functions.get(name)
    if fn is None:
        hint = _hint(name, scope.functions)
        raise EvalError(f"function {name}() is not supported by packwrap{hint}", node.pos)
    args = [_eval(n, scope) for n in arg_nodes]
    if expand:
        if not args or not isinstance(args[-1], list):
            raise EvalError(f"{name}(): '...' needs a list as the last argument", node.pos)
        args = args[:-1] + args[-1]
    try:
        return fn(scope, *args)
    except FuncError as exc:
        raise EvalError(f"{name}(): {exc}", node.pos) from None
    except TypeError as exc:
        if "positional argument" in str(exc) or "takes" in str(exc):
            raise EvalError(f"{name}(): {_arity(fn)}", node.pos) from None
        raise


def _arity(fn: Callable[..., Any]) -> str:
    """How many arguments fn takes, for a call with the wrong number (as Packer says)."""
    import inspect

    params = list(inspect.signature(fn).parameters.values())[1:]  # after scope
    kinds = inspect.Parameter
    required = [p for p in params if p.kind != kinds.VAR_POSITIONAL and p.default is p.empty]
    if any(p.kind == kinds.VAR_POSITIONAL for p in params):
        return f"wrong number of arguments, expects at least {len(required)}"
    optional = len(params) - len(required)
    count = f"{len(required)} to {len(params)}" if optional else str(len(required))
    return f"wrong number of arguments, expects {count}"


def _convert(arg_nodes: list[Node], scope: Scope, node: Node) -> Any:
    """convert(value, type): the second argument is a type expression, not a value."""
    from packwrap.template.types import TypeSyntaxError, convert, parse_type

    if len(arg_nodes) != 2:
        raise EvalError("convert(): takes exactly two arguments", node.pos)
    try:
        wanted = parse_type(arg_nodes[1])
    except TypeSyntaxError as exc:
        raise EvalError(f"convert(): {exc}", node.pos) from None
    value = _eval(arg_nodes[0], scope)
    return _at(node, lambda: convert(value, wanted))


def _try_can(name: str, arg_nodes: list[Node], scope: Scope, node: Node) -> Any:
    if name == "can":
        if len(arg_nodes) != 1:
            raise EvalError("can(): takes exactly one argument", node.pos)
        try:
            _eval(arg_nodes[0], scope)
        except EvalError:
            return False
        return True
    for arg in arg_nodes:
        try:
            return _eval(arg, scope)
        except EvalError:
            continue
    raise EvalError("try(): no argument could be evaluated", node.pos)
