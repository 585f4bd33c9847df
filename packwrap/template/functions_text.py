"""Packer's string, encoding, crypto, file-set and time functions not in functions.py.

Each takes the evaluation Scope first and raises FuncError; the evaluator adds
file:line and the call. Heavy modules (yaml, cryptography, bcrypt) are imported
on first call so `packwrap --help` does not pay for them.
"""

from __future__ import annotations

import base64
import codecs
import datetime as _dt
import hashlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from packwrap.template.evaluate import FuncError, Scope, string_param, to_number, to_string


def _str1(fn: Callable[[str], Any]) -> Callable[..., Any]:
    return lambda scope, s: fn(string_param(s))


def _str2(fn: Callable[[str, str], Any]) -> Callable[..., Any]:
    return lambda scope, a, b: fn(string_param(a), string_param(b, "substr"))


def _base64gzip(scope: Scope, s: Any) -> str:
    # Same content as Packer's; the deflate bytes may differ from Go's compressor.
    import gzip

    return base64.b64encode(gzip.compress(to_string(s).encode(), mtime=0)).decode()


def _bcrypt(scope: Scope, s: Any, cost: Any = 10) -> str:
    import bcrypt

    rounds = int(to_number(cost))
    if not 4 <= rounds <= 31:
        raise FuncError(f"crypto/bcrypt: cost {rounds} is outside allowed range (4,31)")
    hashed = bcrypt.hashpw(to_string(s).encode(), bcrypt.gensalt(rounds)).decode()
    return "$2a$" + hashed[4:]  # Go's x/crypto/bcrypt writes the $2a$ prefix


def _csvdecode(scope: Scope, s: Any) -> list:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(to_string(s)), strict=True))
    if not rows:
        raise FuncError("missing header line")
    header, out = rows[0], []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise FuncError(f"record on line {n}: wrong number of fields")
        out.append(dict(zip(header, row, strict=True)))
    return out


def _fileset(scope: Scope, path: Any, pattern: Any) -> list:
    base = Path(to_string(path))
    if not base.is_absolute():
        base = scope.root_dir / base if (scope.root_dir / base).is_dir() else scope.cwd / base
    import glob

    pat = to_string(pattern)
    try:
        found = glob.glob(pat, root_dir=base, recursive=True)
    except (OSError, ValueError) as exc:
        raise FuncError(f"failed to glob pattern ({pat}): {exc}") from None
    return sorted(p.replace("\\", "/") for p in found if (base / p).is_file())


def _formatlist(scope: Scope, spec: Any, *args: Any) -> list:
    from packwrap.template.functions import FUNCTIONS

    lengths = {len(a) for a in args if isinstance(a, list)}
    if len(lengths) > 1:
        raise FuncError("all arguments that are lists must have the same length")
    n = lengths.pop() if lengths else 1
    fmt = FUNCTIONS["format"]
    return [fmt(scope, spec, *(a[i] if isinstance(a, list) else a for a in args)) for i in range(n)]


def _indent(scope: Scope, spaces: Any, s: Any) -> str:
    pad = " " * int(to_number(spaces))
    return to_string(s).replace("\n", "\n" + pad)


def _sha1(s: str) -> str:
    return hashlib.sha1(s.encode()).hexdigest()  # noqa: S324 -- Packer's sha1(), not security


def _codec(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise FuncError(f"{name!r} is not a supported IANA encoding name or alias") from None


def _textencodebase64(scope: Scope, s: Any, encoding: Any) -> str:
    codec = _codec(to_string(encoding))
    try:
        return base64.b64encode(to_string(s).encode(codec)).decode()
    except UnicodeEncodeError:
        raise FuncError(
            f"the given string contains characters not in {to_string(encoding)}"
        ) from None


def _textdecodebase64(scope: Scope, s: Any, encoding: Any) -> str:
    codec = _codec(to_string(encoding))
    try:
        raw = base64.b64decode(to_string(s), validate=True)
    except ValueError:
        raise FuncError("the given value is has an invalid base64 symbol") from None
    try:
        return raw.decode(codec)
    except UnicodeDecodeError:
        raise FuncError(
            f"the given string contains symbols that are not defined for {to_string(encoding)}"
        ) from None


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1,
    "m": 60,
    "h": 3600,
}


def _go_duration(text: str) -> _dt.timedelta:
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text.removeprefix("+"))
    if body == "0":
        return _dt.timedelta()
    parts = list(_DURATION.finditer(body))
    if not body or "".join(m.group(0) for m in parts) != body:
        raise FuncError(f'time: invalid duration "{text}"')
    seconds = sum(float(m.group(1)) * _UNIT_SECONDS[m.group(2)] for m in parts)
    return _dt.timedelta(seconds=sign * seconds)


def _parse_rfc3339(ts: str) -> _dt.datetime:
    try:
        t = _dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        t = None
    if t is None or t.tzinfo is None or "T" not in ts:
        raise FuncError(f'not a valid RFC3339 timestamp: "{ts}"')
    return t


def _timeadd(scope: Scope, ts: Any, duration: Any) -> str:
    t = _parse_rfc3339(to_string(ts)) + _go_duration(to_string(duration))
    # Go's time.RFC3339 layout: whole seconds, Z for UTC
    return t.replace(microsecond=0).isoformat().replace("+00:00", "Z")


# Go reference-time layout tokens (Mon Jan 2 15:04:05 MST 2006) -> strftime.
_GO_LAYOUT = re.compile(
    r"2006|01|02|15|03|04|05|January|Jan|Monday|Mon|MST|-0700|-07:00|Z07:00|PM|pm|06|_2|1|2|3|4|5"
)
_GO_TO_STRFTIME = {
    "2006": "%Y",
    "06": "%y",
    "01": "%m",
    "1": "%-m",
    "January": "%B",
    "Jan": "%b",
    "02": "%d",
    "_2": "%e",
    "2": "%-d",
    "Monday": "%A",
    "Mon": "%a",
    "15": "%H",
    "03": "%I",
    "3": "%-I",
    "04": "%M",
    "4": "%-M",
    "05": "%S",
    "5": "%-S",
    "PM": "%p",
    "pm": "%p",  # lower-cased below
    "MST": "UTC",
    "-0700": "+0000",
    "-07:00": "+00:00",
    "Z07:00": "Z",
}


def _now(scope: Scope) -> _dt.datetime:
    from packwrap.template.functions import FUNCTIONS

    return _parse_rfc3339(FUNCTIONS["timestamp"](scope))  # one instant per load


def _legacy_isotime(scope: Scope, layout: Any) -> str:
    """Packer's {{isotime}}: the build's timestamp in a Go reference-time layout (UTC)."""
    t = _now(scope)
    text = to_string(layout) or "2006-01-02T15:04:05Z07:00"

    def token(m: re.Match[str]) -> str:
        value = t.strftime(_GO_TO_STRFTIME[m.group(0)])
        return value.lower() if m.group(0) == "pm" else value

    return _GO_LAYOUT.sub(token, text)


def _legacy_strftime(scope: Scope, spec: Any) -> str:
    return _now(scope).strftime(to_string(spec))


def _rsadecrypt(scope: Scope, ciphertext: Any, key: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        raw = base64.b64decode(to_string(ciphertext), validate=True)
    except ValueError:
        raise FuncError(
            'failed to decode input "cipher_text": cipher text must be base64-encoded'
        ) from None
    try:
        pk = load_pem_private_key(to_string(key).encode(), password=None)
    except (ValueError, TypeError):
        raise FuncError("failed to parse key: no key found") from None
    if not isinstance(pk, rsa.RSAPrivateKey):
        raise FuncError("failed to parse key: not an RSA private key")
    try:
        return pk.decrypt(raw, padding.PKCS1v15()).decode()
    except ValueError:
        raise FuncError("failed to decrypt: crypto/rsa: decryption error") from None


def _uuidv5(scope: Scope, namespace: Any, name: Any) -> str:
    import uuid

    namespaces = {
        "dns": uuid.NAMESPACE_DNS,
        "url": uuid.NAMESPACE_URL,
        "oid": uuid.NAMESPACE_OID,
        "x500": uuid.NAMESPACE_X500,
    }
    ns_text = to_string(namespace)
    ns = namespaces.get(ns_text)
    if ns is None:
        try:
            ns = uuid.UUID(ns_text)
        except ValueError:
            raise FuncError(
                f"uuidv5() doesn't support namespace {ns_text} (invalid UUID length)"
            ) from None
    return str(uuid.uuid5(ns, to_string(name)))


def _yamldecode(scope: Scope, s: Any) -> Any:
    import yaml

    try:
        docs = list(yaml.safe_load_all(to_string(s)))
    except yaml.YAMLError as exc:
        raise FuncError(
            f"on line {_yaml_line(exc)}: {getattr(exc, 'problem', None) or exc}"
        ) from None
    if len(docs) != 1:
        raise FuncError(
            "the YAML source must contain exactly one document" if docs else "empty document"
        )
    return _from_yaml(docs[0])


def _yaml_line(exc: Any) -> int:
    mark = getattr(exc, "problem_mark", None)
    return mark.line + 1 if mark is not None else 1


def _from_yaml(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {to_string(k): _from_yaml(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_from_yaml(x) for x in v]
    if isinstance(v, _dt.datetime):  # go-cty-yaml: timestamps become RFC 3339 strings
        t = v if v.tzinfo else v.replace(tzinfo=_dt.UTC)
        return t.isoformat().replace("+00:00", "Z")
    if isinstance(v, _dt.date):
        return f"{v.isoformat()}T00:00:00Z"
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    return v


def _yamlencode(scope: Scope, value: Any) -> str:
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    # go-cty-yaml double-quotes every string, keys included.
    _Dumper.add_representer(
        str,
        lambda d, s: d.represent_scalar(
            "tag:yaml.org,2002:str", s, style="|" if "\n" in s else '"'
        ),
    )
    return yaml.dump(
        value,
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=True,
        allow_unicode=True,
        width=10**9,
    )


def _urlencode(s: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(s, safe="")  # Go's url.QueryEscape


def _strcontains(scope: Scope, s: Any, sub: Any) -> bool:
    return to_string(sub) in to_string(s)


def _service(name: str) -> Callable[..., Any]:
    def refuse(scope: Scope, *args: Any) -> Any:
        raise FuncError(
            f"{name}() reads a remote service, which packwrap does not call; hand this build "
            "to packer (`packer build`) to use it"
        )

    return refuse


TEXT_FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "aws_secretsmanager": _service("aws_secretsmanager"),
    "aws_secretsmanager_raw": _service("aws_secretsmanager_raw"),
    "base64gzip": _base64gzip,
    "bcrypt": _bcrypt,
    "consul_key": _service("consul_key"),
    "csvdecode": _csvdecode,
    "endswith": _str2(lambda s, suffix: s.endswith(suffix)),
    "fileset": _fileset,
    "formatlist": _formatlist,
    "indent": _indent,
    "legacy_isotime": _legacy_isotime,
    "legacy_strftime": _legacy_strftime,
    "rsadecrypt": _rsadecrypt,
    "sha1": _str1(_sha1),
    "startswith": _str2(lambda s, prefix: s.startswith(prefix)),
    "strcontains": _strcontains,
    "strrev": _str1(lambda s: s[::-1]),
    "textdecodebase64": _textdecodebase64,
    "textencodebase64": _textencodebase64,
    "timeadd": _timeadd,
    "urlencode": _str1(_urlencode),
    "uuidv5": _uuidv5,
    "vault": _service("vault"),
    "yamldecode": _yamldecode,
    "yamlencode": _yamlencode,
}
