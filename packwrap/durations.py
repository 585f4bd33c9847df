"""Go-style durations ("1m20s", "1.5h", "500ms") as Packer writes them."""

from __future__ import annotations

import re

from packwrap.errors import PackwrapError

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


#: Go's time.Duration is an int64 of nanoseconds: nothing longer parses there.
MAX_SECONDS = (2**63 - 1) / 1e9


def _short(text: object) -> str:
    s = str(text)
    return s if len(s) <= 40 else s[:37] + "..."


def parse_duration(text: str | int | float, *, what: str = "duration") -> float:
    """Seconds in a Go duration string; a bare number means seconds (as Packer's JSON did)."""
    if isinstance(text, bool):
        raise PackwrapError(f"invalid {what} {text!r}: expected a duration like 5s or 1m30s")
    if isinstance(text, int | float):
        return float(text)
    s = str(text).strip()
    sign = 1.0
    if s.startswith(("+", "-")):  # not `s[:1] in "+-"`: "" is in every string
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if re.fullmatch(r"\d+(\.\d+)?", s):
        if not float(s) <= MAX_SECONDS:
            raise PackwrapError(f"invalid {what} {_short(text)!r}: out of range")
        return sign * float(s)
    pos, ns = 0, 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if not m:
            raise PackwrapError(f"invalid {what} {text!r}: expected a duration like 5s or 1m30s")
        part = float(m.group(1)) * _UNITS[m.group(2)]
        if not part <= MAX_SECONDS:  # also inf/nan
            raise PackwrapError(f"invalid {what} {_short(text)!r}: out of range")
        # whole nanoseconds, like Go's time.Duration: "10us" is exactly 1e-05 s
        ns += round(part * 1e9)
        pos = m.end()
    if pos == 0:
        raise PackwrapError(f"invalid {what} {text!r}: expected a duration like 5s or 1m30s")
    return sign * ns / 1e9


def format_duration(seconds: float) -> str:
    """Short human form: 4.9s, 2m05s, 1h02m."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"
