"""The HCL functions packwrap evaluates: Packer's (packer_functions.py lists them).

Each function takes the evaluation Scope first, then its HCL arguments, and
raises FuncError for bad input (the evaluator adds file:line and the call).
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from packwrap.template.evaluate import (
    EvalError,
    FuncError,
    Scope,
    evaluate,
    string_param,
    to_bool,
    to_number,
    to_string,
    type_name,
)
from packwrap.template.functions_collections import COLLECTION_FUNCTIONS
from packwrap.template.functions_text import TEXT_FUNCTIONS


def _str(fn: Callable[[str], Any]) -> Callable[..., Any]:
    return lambda scope, s: fn(string_param(s))


def _list(value: Any, what: str = "argument") -> list:
    if not isinstance(value, list):
        raise FuncError(f"{what} must be a list, got {type_name(value)}")
    return value


def _map(value: Any, what: str = "argument") -> Mapping:
    if not isinstance(value, Mapping):
        raise FuncError(f"{what} must be a map, got {type_name(value)}")
    return value


def _format(scope: Scope, spec: Any, *args: Any) -> str:
    spec = to_string(spec)
    out: list[str] = []
    it = iter(args)
    i = 0
    while i < len(spec):
        c = spec[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        m = re.compile(r"%([-+ #0]*)(\d*)(?:\.(\d+))?([sdvqft%xXobeEgG])").match(spec, i)
        if not m:
            raise FuncError(f"unsupported verb at {spec[i:]!r}")
        flags, width, prec, verb = m.groups()
        i = m.end()
        if verb == "%":
            out.append("%")
            continue
        try:
            value = next(it)
        except StopIteration:
            raise FuncError(f"not enough arguments for {spec!r}") from None
        if verb in "sv":
            out.append(_format_text(verb, value, flags, width, prec))
        elif verb == "q":
            out.append(json.dumps(to_string(value)))
        elif verb == "t":
            out.append(to_string(to_bool(value)))
        else:
            n = to_number(value)
            if verb in "dxXob":
                if n != int(n):
                    raise FuncError(f'unsupported value for "%{verb}": an integer is required')
                n = int(n)
            pyprec = f".{prec}" if prec is not None else ""
            pyverb = {"d": "d", "v": "d"}.get(verb, verb)
            align = "<" if "-" in flags else ""
            rest = flags.replace("-", "")
            out.append(format(n, f"{align}{rest}{width}{pyprec}{pyverb}"))
    return "".join(out)


def _format_text(verb: str, value: Any, flags: str, width: str, prec: str | None) -> str:
    if isinstance(value, list | Mapping):
        if verb == "s":  # cty: %s converts to string, which a collection is not
            raise FuncError('unsupported value for "%s": string required')
        text = _go_json(value)  # %v: the value as JSON
    else:
        text = to_string(value)
    if prec is not None:
        text = text[: int(prec)]
    return format(text, f"{'<' if '-' in flags else '>'}{width}") if width else text


def _title(s: str) -> str:
    # Go's strings.Title: upper-case each letter that follows a separator
    out, prev = [], " "
    for c in s:
        out.append(c.upper() if _separator(prev) else c)
        prev = c
    return "".join(out)


def _separator(c: str) -> bool:
    if c.isalnum() or c == "_":
        return False
    return ord(c) < 128 or c.isspace()


def _join(scope: Scope, sep: Any, *lists: Any) -> str:
    items = [x for lst in lists for x in _list(lst)]
    return to_string(sep).join(to_string(x) for x in items)


def _lookup(scope: Scope, m: Any, key: Any, *default: Any) -> Any:
    if not default:  # cty's lookup has no two-argument form (Terraform's has)
        raise FuncError('expects 3 argument(s). Missing value for "default".')
    m = _map(m)
    key = to_string(key)
    return m[key] if key in m else default[0]


def _length(scope: Scope, v: Any) -> int:
    if isinstance(v, str | list | Mapping):
        return len(v)
    raise FuncError(f"cannot take the length of a {type_name(v)} value")


def _coalesce(scope: Scope, *args: Any) -> Any:
    # cty unifies the arguments' types first: a string among numbers/bools makes them strings
    unify = any(isinstance(a, str) for a in args) and all(
        a is None or isinstance(a, str | int | float) for a in args
    )
    for a in args:
        if a is not None and a != "":
            return to_string(a) if unify else a
    raise FuncError("no non-null, non-empty argument")


def _resolve(scope: Scope, path: Any) -> Path:
    # Packer resolves relative paths from the working directory; packwrap falls
    # back to the template's directory so a project works from anywhere.
    p = Path(os.path.expanduser(to_string(path)))
    if p.is_absolute():
        return p
    if (scope.cwd / p).exists() or not (scope.root_dir / p).exists():
        return scope.cwd / p
    return scope.root_dir / p


def _file(scope: Scope, path: Any) -> str:
    p = _resolve(scope, path)
    try:
        return p.read_text(encoding="utf-8")
    except OSError as exc:
        raise FuncError(f"cannot read {str(p)!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise FuncError(f"{str(p)!r} is not UTF-8 text") from None


def _templatefile(scope: Scope, path: Any, variables: Any = None) -> str:
    from packwrap.template.expr import ExprSyntaxError, parse_template

    variables = dict(_map(variables if variables is not None else {}, "template variables"))
    p = _resolve(scope, path)
    text = _file(scope, path)
    try:
        node = parse_template(text)
        inner = scope.child(variables)
        # Packer's templatefile cannot call itself
        inner.functions = {**scope.functions, "templatefile": _no_nested_templatefile}
        return to_string(evaluate(node, inner))
    except (ExprSyntaxError, EvalError) as exc:
        line = text.count("\n", 0, exc.pos or 0) + 1
        raise FuncError(f"{p}:{line}: {exc.message}") from None


def _no_nested_templatefile(scope: Scope, *args: Any) -> str:
    raise FuncError("cannot recursively call templatefile from inside templatefile call")


def _timestamp(scope: Scope) -> str:
    # One timestamp per load, like Packer's single evaluation pass.
    if "timestamp" not in scope.state:
        now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
        scope.state["timestamp"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return scope.state["timestamp"]


_DATE_TOKENS = re.compile(
    r"'[^']*'|YYYY|YY|MMMM|MMM|MM|M|DD|D|EEEE|EEE|hh|h|HH|H|mm|m|ss|s|AA|aa|ZZZZZ|ZZZZ|ZZZ|Z"
    r"|[A-Za-z]+"  # any other letters: cty rejects them
)


def _formatdate(scope: Scope, spec: Any, ts: Any) -> str:
    spec, ts = to_string(spec), to_string(ts)
    try:
        t = _dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        raise FuncError(f"{ts!r} is not an RFC 3339 timestamp") from None
    if t.tzinfo is None:
        raise FuncError(f"{ts!r} has no time zone (RFC 3339 needs one)")

    def rep(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok.startswith("'"):
            return tok[1:-1].replace("''", "'") or "'"
        off = t.utcoffset() or _dt.timedelta()
        mins = int(off.total_seconds() // 60)
        sign = "+" if mins >= 0 else "-"
        hh, mm = divmod(abs(mins), 60)
        table = {
            "YYYY": f"{t.year:04d}",
            "YY": f"{t.year % 100:02d}",
            "MMMM": t.strftime("%B"),
            "MMM": t.strftime("%b"),
            "MM": f"{t.month:02d}",
            "M": str(t.month),
            "DD": f"{t.day:02d}",
            "D": str(t.day),
            "EEEE": t.strftime("%A"),
            "EEE": t.strftime("%a"),
            "hh": f"{t.hour:02d}",
            "h": str(t.hour),
            "HH": f"{(t.hour % 12) or 12:02d}",
            "H": str((t.hour % 12) or 12),
            "mm": f"{t.minute:02d}",
            "m": str(t.minute),
            "ss": f"{t.second:02d}",
            "s": str(t.second),
            "AA": "AM" if t.hour < 12 else "PM",
            "aa": "am" if t.hour < 12 else "pm",
            "ZZZZZ": f"{sign}{hh:02d}:{mm:02d}",
            "ZZZZ": f"{sign}{hh:02d}{mm:02d}",
            "ZZZ": "UTC" if mins == 0 else f"{sign}{hh:02d}{mm:02d}",
            "Z": "Z" if mins == 0 else f"{sign}{hh:02d}:{mm:02d}",
        }
        if tok not in table:
            raise FuncError(f'invalid date format verb "{tok}"')
        return table[tok]

    return _DATE_TOKENS.sub(rep, spec)


def _go_replacement(repl: str) -> str:
    # Go's $1 / ${1} / ${name} -> Python's \g<1>; a literal backslash stays literal.
    repl = repl.replace("\\", "\\\\")
    repl = re.sub(r"\$\{(\w+)\}", r"\\g<\1>", repl)
    repl = re.sub(r"\$(\d+)", r"\\g<\1>", repl)
    return repl.replace("$$", "$")


def _regex_replace(scope: Scope, s: Any, pattern: Any, repl: Any) -> str:
    try:
        rx = re.compile(to_string(pattern))
    except re.error as exc:
        raise FuncError(f"invalid regular expression {pattern!r}: {exc}") from None
    return rx.sub(_go_replacement(to_string(repl)), to_string(s))


def _compile(pattern: Any) -> re.Pattern[str]:
    try:
        return re.compile(to_string(pattern))
    except re.error as exc:
        raise FuncError(f"invalid regular expression {pattern!r}: {exc}") from None


def _match_value(m: re.Match[str]) -> Any:
    # Like HCL: no groups -> the match; named groups -> a map; else a list of groups.
    if m.re.groupindex:
        return {k: m.group(k) for k in m.re.groupindex}
    if m.re.groups:
        return list(m.groups())
    return m.group(0)


def _regex(scope: Scope, pattern: Any, s: Any) -> Any:
    m = _compile(pattern).search(to_string(s))
    if m is None:
        raise FuncError("pattern did not match")
    return _match_value(m)


def _regexall(scope: Scope, pattern: Any, s: Any) -> list:
    return [_match_value(m) for m in _compile(pattern).finditer(to_string(s))]


def _replace(scope: Scope, s: Any, old: Any, new: Any) -> str:
    s, old, new = to_string(s), to_string(old), to_string(new)
    return s.replace(old, new)  # cty's replace: plain text (regex_replace takes patterns)


def _numbers(args: tuple) -> list:
    if not args:
        raise FuncError("must pass at least one number")
    return [to_number(a) for a in args]


def _tonumber(scope: Scope, v: Any) -> Any:
    return None if v is None else to_number(v)


def _tostring(scope: Scope, v: Any) -> Any:
    return None if v is None else to_string(v)


def _substr(scope: Scope, s: Any, offset: Any, length: Any) -> str:
    s = to_string(s)
    off, n = int(to_number(offset)), int(to_number(length))
    if off < 0:
        off += len(s)
    return s[off:] if n == -1 else s[off : off + n]


def _element(scope: Scope, lst: Any, i: Any) -> Any:
    lst = _list(lst)
    if not lst:
        raise FuncError("cannot use element() on an empty list")
    index = int(to_number(i))
    if index < 0:
        raise FuncError("cannot use element function with a negative index")
    return lst[index % len(lst)]


def _merge(scope: Scope, *maps: Any) -> dict:
    out: dict = {}
    for m in maps:
        if m is not None:
            out.update(_map(m))
    return out


def _flatten(scope: Scope, lst: Any) -> list:
    out: list = []
    for x in _list(lst):
        out.extend(_flatten(scope, x) if isinstance(x, list) else [x])
    return out


def _distinct(scope: Scope, lst: Any) -> list:
    items = _list(lst)
    if any(isinstance(x, str) for x in items) and all(
        isinstance(x, str | int | float) for x in items
    ):
        items = [to_string(x) for x in items]  # cty unifies a mixed list to strings first
    out: list = []
    for x in items:
        if x not in out:
            out.append(x)
    return out


IN_DEFAULT = "__variable_default__"  # a root marker: evaluating a variable default


def _env(scope: Scope, name: Any) -> str:
    name = to_string(name)
    if not scope.roots.get(IN_DEFAULT):
        # Packer allows env() only in variable defaults; packwrap everywhere.
        scope.state.setdefault("env_outside_default", set()).add(name)
    return scope.env.get(name, "")


def _abspath(scope: Scope, p: Any) -> str:
    return os.path.normpath(os.path.join(scope.cwd, os.path.expanduser(to_string(p))))


def _b64decode(scope: Scope, s: Any) -> str:
    try:
        return base64.b64decode(to_string(s), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise FuncError("invalid base64 data") from None


def _jsondecode(scope: Scope, s: Any) -> Any:
    try:
        return json.loads(to_string(s))
    except json.JSONDecodeError as exc:
        raise FuncError(f"invalid JSON: {exc.msg}") from None


def _split(scope: Scope, sep: Any, s: Any) -> list:
    s, sep = to_string(s), to_string(sep)
    if sep == "":  # Go's strings.Split: one element per character
        return list(s)
    return s.split(sep)  # ... and "" gives [""]


def _basename(s: str) -> str:
    # Go's filepath.Base: trailing slashes dropped, "" -> ".", "///" -> "/"
    stripped = s.rstrip("/")
    if not stripped:
        return "/" if s else "."
    return os.path.basename(stripped)


def _concat(scope: Scope, *lists: Any) -> list:
    if not lists:
        raise FuncError("at least one argument is required")
    return [x for lst in lists for x in _list(lst)]


_GO_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _jsonencode(scope: Scope, v: Any) -> str:
    return _go_json(v)


def _go_json(v: Any) -> str:
    # Go's encoding/json: UTF-8 as is, but <, >, & and U+2028/9 escaped
    text = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    for c, esc in _GO_JSON_ESCAPES.items():
        text = text.replace(c, esc)
    return text


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": lambda scope, n: abs(to_number(n)),
    "abspath": _abspath,
    "base64decode": _b64decode,
    "base64encode": _str(lambda s: base64.b64encode(s.encode()).decode()),
    "basename": _str(_basename),
    "ceil": lambda scope, n: int(-(-to_number(n) // 1)),
    "chomp": _str(lambda s: s.rstrip("\r\n")),
    "coalesce": _coalesce,
    "concat": _concat,
    "contains": lambda scope, lst, v: v in _list(lst),
    "dirname": _str(lambda s: os.path.dirname(s) or "."),
    "distinct": _distinct,
    "element": _element,
    "env": _env,
    "file": _file,
    "fileexists": lambda scope, p: _resolve(scope, p).is_file(),
    "flatten": _flatten,
    "floor": lambda scope, n: int(to_number(n) // 1),
    "format": _format,
    "formatdate": _formatdate,
    "join": _join,
    "jsondecode": _jsondecode,
    "jsonencode": _jsonencode,
    "keys": lambda scope, m: sorted(_map(m)),
    "length": _length,
    "lookup": _lookup,
    "lower": _str(str.lower),
    "max": lambda scope, *a: max(_numbers(a)),
    "md5": _str(lambda s: hashlib.md5(s.encode()).hexdigest()),
    "merge": _merge,
    "min": lambda scope, *a: min(_numbers(a)),
    "pathexpand": _str(os.path.expanduser),
    "regex": _regex,
    "regexall": _regexall,
    "regex_replace": _regex_replace,
    "replace": _replace,
    "sha256": _str(lambda s: hashlib.sha256(s.encode()).hexdigest()),
    "sha512": _str(lambda s: hashlib.sha512(s.encode()).hexdigest()),
    "split": _split,
    "substr": _substr,
    "timestamp": _timestamp,
    "title": _str(_title),
    "tobool": lambda scope, v: None if v is None else to_bool(v),
    "tolist": lambda scope, v: list(_list(v)),
    "tomap": lambda scope, v: dict(_map(v)),
    "tonumber": _tonumber,
    "toset": lambda scope, v: _distinct(scope, v),
    "tostring": _tostring,
    "trim": lambda scope, s, chars: to_string(s).strip(to_string(chars)),
    "trimprefix": lambda scope, s, p: to_string(s).removeprefix(to_string(p)),
    "trimspace": _str(str.strip),
    "trimsuffix": lambda scope, s, p: to_string(s).removesuffix(to_string(p)),
    "upper": _str(str.upper),
    "uuidv4": lambda scope: str(uuid.uuid4()),
    "values": lambda scope, m: [_map(m)[k] for k in sorted(_map(m))],
    "templatefile": _templatefile,
    **COLLECTION_FUNCTIONS,
    **TEXT_FUNCTIONS,
}
