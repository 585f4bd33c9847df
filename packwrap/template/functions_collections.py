"""Packer's collection, number and network functions (go-cty stdlib, go-cty-funcs cidr).

Each takes the evaluation Scope first, like those in functions.py, and raises
FuncError with cty's kind of message; the evaluator adds file:line and the call.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ipaddress

from packwrap.template.evaluate import FuncError, Scope, to_bool, to_number, to_string, type_name


def _list(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise FuncError(f'Invalid value for "{what}" parameter: list required.')
    return value


def _int(value: Any, what: str) -> int:
    n = to_number(value)
    if n != int(n):
        raise FuncError(f'Invalid value for "{what}" parameter: a whole number is required.')
    return int(n)


def _alltrue(scope: Scope, lst: Any) -> bool:
    return all(to_bool(x) for x in _list(lst, "list"))


def _anytrue(scope: Scope, lst: Any) -> bool:
    return any(to_bool(x) for x in _list(lst, "list"))


def _chunklist(scope: Scope, lst: Any, size: Any) -> list:
    lst, n = _list(lst, "list"), _int(size, "size")
    if n < 0:
        raise FuncError("the size argument must be positive")
    if n == 0 or not lst:
        return [lst] if n == 0 else []
    return [lst[i : i + n] for i in range(0, len(lst), n)]


def _coalescelist(scope: Scope, *lists: Any) -> list:
    if not lists:
        raise FuncError("at least one argument is required")
    for lst in lists:
        _list(lst, "vals")  # every argument must be a list, not only the first non-empty one
    for lst in lists:
        if lst:
            return lst
    raise FuncError("no non-null arguments")


def _compact(scope: Scope, lst: Any) -> list:
    return [to_string(x) for x in _list(lst, "list") if x is not None and to_string(x) != ""]


def _index(scope: Scope, lst: Any, value: Any) -> int:
    for i, x in enumerate(_list(lst, "list")):
        if x == value and type_name(x) == type_name(value):
            return i
    raise FuncError("item not found")


def _range(scope: Scope, *args: Any) -> list:
    if not 1 <= len(args) <= 3:
        raise FuncError("must have one, two, or three arguments")
    nums = [to_number(a) for a in args]
    start: int | float
    limit: int | float
    step: int | float
    start, limit = (0, nums[0]) if len(nums) == 1 else (nums[0], nums[1])
    step = 1 if start <= limit else -1  # cty counts down when no step is given
    if len(nums) == 3:
        step = nums[2]
    if step == 0:
        raise FuncError("step must not be zero")
    if (limit - start) * step < 0:
        raise FuncError(
            "step must be positive when start is less than limit"
            if step < 0
            else "step must be negative when start is greater than limit"
        )
    count = max(0, math.ceil((limit - start) / step))
    if count > 1024:
        raise FuncError(
            "more than 1024 values were generated; either decrease the difference "
            "between start and end or use a smaller step"
        )
    return [_whole(start + i * step) for i in range(count)]


def _whole(n: int | float) -> int | float:
    return int(n) if isinstance(n, float) and n.is_integer() else n


def _set(lst: Any, what: str) -> list:
    out: list = []
    for x in _list(lst, what):
        if x not in out:
            out.append(x)
    return out


def _setunion(scope: Scope, first: Any, *rest: Any) -> list:
    out = _set(first, "first_set")
    for s in rest:
        out += [x for x in _set(s, "other_sets") if x not in out]
    return _sorted_set(out)


def _setintersection(scope: Scope, first: Any, *rest: Any) -> list:
    out = _set(first, "first_set")
    for s in rest:
        other = _set(s, "other_sets")
        out = [x for x in out if x in other]
    return _sorted_set(out)


def _sorted_set(items: list) -> list:
    # cty orders a set of strings lexically and a set of numbers numerically.
    if all(isinstance(x, str) for x in items):
        return sorted(items)
    if all(isinstance(x, int | float) and not isinstance(x, bool) for x in items):
        return sorted(items)
    return items


def _setproduct(scope: Scope, *sets: Any) -> list:
    if len(sets) < 2:
        raise FuncError("at least two arguments are required")
    return [list(t) for t in itertools.product(*(_list(s, "sets") for s in sets))]


def _slice(scope: Scope, lst: Any, start: Any, end: Any) -> list:
    lst = _list(lst, "list")
    i, j = _int(start, "start_index"), _int(end, "end_index")
    if i < 0:
        raise FuncError("the start index must not be less than zero")
    if j > len(lst):
        raise FuncError("end index must not be greater than the length of the list")
    if i > j:
        raise FuncError("start index must not be greater than end index")
    return lst[i:j]


def _sort(scope: Scope, lst: Any) -> list:
    # cty's sort takes list(string): numbers are converted, so 10 sorts before 9.
    return sorted(to_string(x) for x in _list(lst, "list"))


def _sum(scope: Scope, lst: Any) -> int | float:
    items = _list(lst, "list")
    if not items:
        raise FuncError("cannot sum an empty list")
    return _whole(sum(to_number(x) for x in items))


def _zipmap(scope: Scope, keys: Any, values: Any) -> dict:
    keys, values = _list(keys, "keys"), _list(values, "values")
    if len(keys) != len(values):
        raise FuncError(
            f"number of keys ({len(keys)}) does not match number of values ({len(values)})"
        )
    return {to_string(k): v for k, v in zip(keys, values, strict=True)}


def _reverse(scope: Scope, lst: Any) -> list:
    return list(reversed(_list(lst, "list")))


def _log(scope: Scope, n: Any, base: Any) -> float:
    n, b = to_number(n), to_number(base)
    try:
        return _whole(math.log(n, b))
    except (ValueError, ZeroDivisionError):
        raise FuncError("logarithm of a non-positive number or base") from None


def _pow(scope: Scope, n: Any, p: Any) -> int | float:
    try:
        return _whole(math.pow(to_number(n), to_number(p)))
    except (ValueError, OverflowError):
        raise FuncError("result is not a finite number") from None


def _signum(scope: Scope, n: Any) -> int:
    n = to_number(n)
    return (n > 0) - (n < 0)


_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _parseint(scope: Scope, s: Any, base: Any) -> int:
    b = _int(base, "base")
    if not 2 <= b <= 62:
        raise FuncError(f"base must be a whole number between 2 and 62 inclusive, got {b}")
    text = to_string(s)
    body = text[1:] if text[:1] in "+-" else text
    digits = _DIGITS if b > 36 else _DIGITS[:36]
    value = 0
    for c in body if b > 36 else body.lower():
        d = digits.find(c)
        if d < 0 or d >= b:
            raise FuncError(_unparsable(text, b))
        value = value * b + d
    if not body:
        raise FuncError(_unparsable(text, b))
    return -value if text.startswith("-") else value


def _unparsable(text: str, base: int) -> str:
    return f'Invalid value for "number" parameter: cannot parse "{text}" as a base {base} integer.'


def _network(prefix: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    import ipaddress

    try:
        return ipaddress.ip_network(to_string(prefix), strict=False)
    except ValueError:
        raise FuncError(f"invalid CIDR expression: {to_string(prefix)}") from None


def _cidrhost(scope: Scope, prefix: Any, hostnum: Any) -> str:
    net, n = _network(prefix), _int(hostnum, "hostnum")
    if n < 0:
        n += net.num_addresses
    if not 0 <= n < net.num_addresses:
        raise FuncError(f"prefix of {net.prefixlen} does not accommodate a host numbered {hostnum}")
    return str(net.network_address + n)


def _cidrnetmask(scope: Scope, prefix: Any) -> str:
    net = _network(prefix)
    if net.version != 4:
        raise FuncError("only IPv4 networks are supported")
    return str(net.netmask)


def _subnet(net: Any, newbits: int, netnum: int) -> Any:
    bits = net.prefixlen + newbits
    if newbits < 0 or bits > net.max_prefixlen:
        raise FuncError(
            f"insufficient address space to extend prefix of {net.prefixlen} by {newbits}"
        )
    if not 0 <= netnum < 2**newbits:
        raise FuncError(
            f"prefix extension of {newbits} does not accommodate a subnet numbered {netnum}"
        )
    base = int(net.network_address) + (netnum << (net.max_prefixlen - bits))
    return type(net)((base, bits))


def _cidrsubnet(scope: Scope, prefix: Any, newbits: Any, netnum: Any) -> str:
    return str(_subnet(_network(prefix), _int(newbits, "newbits"), _int(netnum, "netnum")))


def _cidrsubnets(scope: Scope, prefix: Any, *newbits: Any) -> list:
    net = _network(prefix)
    out, next_addr = [], int(net.network_address)
    for nb in newbits:
        bits = net.prefixlen + _int(nb, "newbits")
        if bits > net.max_prefixlen or bits < net.prefixlen:
            raise FuncError(
                f"would extend prefix to {bits} bits, which is too long for this address"
            )
        size = 2 ** (net.max_prefixlen - bits)
        start = -(-next_addr // size) * size  # the next boundary of this size
        sub = type(net)((start, bits))
        if not sub.subnet_of(net):  # type: ignore[arg-type]
            raise FuncError(
                f"not enough remaining address space for a subnet with a prefix of {bits} bits"
            )
        out.append(str(sub))
        next_addr = start + size
    return out


COLLECTION_FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "alltrue": _alltrue,
    "anytrue": _anytrue,
    "chunklist": _chunklist,
    "cidrhost": _cidrhost,
    "cidrnetmask": _cidrnetmask,
    "cidrsubnet": _cidrsubnet,
    "cidrsubnets": _cidrsubnets,
    "coalescelist": _coalescelist,
    "compact": _compact,
    "index": _index,
    "log": _log,
    "parseint": _parseint,
    "pow": _pow,
    "range": _range,
    "reverse": _reverse,
    "setintersection": _setintersection,
    "setproduct": _setproduct,
    "setunion": _setunion,
    "signum": _signum,
    "slice": _slice,
    "sort": _sort,
    "sum": _sum,
    "zipmap": _zipmap,
}
