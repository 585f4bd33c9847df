"""Autopartitioning templates for `disklabel -T` (disklabel(8), AUTOMATIC DISK ALLOCATION).

One partition per line: `<mount point|swap|RAID> <size|min-max|*> [<percent>%]`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from packwrap.errors import PackwrapError

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]?)$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_MOUNT = re.compile(r"^/[A-Za-z0-9._/-]*$")


def _bytes(size: str, where: str) -> float:
    m = _SIZE.match(size)
    if not m:
        raise PackwrapError(
            f"{where}: size {size!r} is not a number with an optional unit K, M, G or T "
            "(e.g. 512M, 1.5G) or '*'"
        )
    return float(m.group(1)) * _UNITS[m.group(2).upper()]


def _norm(size: str) -> str:
    m = _SIZE.match(size)
    assert m
    return m.group(1) + m.group(2).upper()


def _size(raw: Any, where: str, last: bool) -> str:
    size = str(raw).strip().replace(" ", "")
    if not size:
        raise PackwrapError(f"{where}: size is missing")
    if size == "*":
        if not last:
            raise PackwrapError(
                f"{where}: size '*' (all the rest) is allowed only on the last line"
            )
        return "*"
    if "-" in size:
        low, _, high = size.partition("-")
        if high == "*":
            _bytes(low, where)
            return f"{_norm(low)}-*"
        if _bytes(low, where) > _bytes(high, where):
            raise PackwrapError(f"{where}: range {size!r} has its minimum above its maximum")
        return f"{_norm(low)}-{_norm(high)}"
    if _bytes(size, where) <= 0:
        raise PackwrapError(f"{where}: size {size!r} must be above zero")
    return _norm(size)


def render_disklabel(layout: Iterable[Mapping[str, Any]]) -> str:
    """A disklabel(8) -T template for [{mount, size, percent}]; PackwrapError on bad input."""
    entries = list(layout or [])
    if not entries:
        raise PackwrapError("disklabel_layout is empty (leave it empty to use the auto layout)")
    lines, mounts, total = [], set(), 0
    for i, part in enumerate(entries):
        where = f"disklabel_layout[{i}]"
        if not isinstance(part, Mapping):
            raise PackwrapError(f"{where}: expected {{mount, size, percent}}, got {part!r}")
        unknown = set(part) - {"mount", "size", "percent"}
        if unknown:
            raise PackwrapError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        mount = str(part.get("mount", "")).strip()
        if mount.lower() == "swap":
            mount = "swap"
        elif mount == "RAID":
            pass
        elif not _MOUNT.match(mount) or "//" in mount or (mount != "/" and mount.endswith("/")):
            raise PackwrapError(
                f"{where}: mount {mount!r} must be an absolute path, 'swap' or 'RAID'"
            )
        if mount not in ("swap",) and mount in mounts:
            raise PackwrapError(f"{where}: mount point {mount} appears twice")
        mounts.add(mount)
        size = _size(part.get("size", ""), where, last=i == len(entries) - 1)
        percent = part.get("percent", 0)
        if percent in (None, ""):
            percent = 0
        try:
            percent_i = int(str(percent).rstrip("%"))
        except ValueError:
            raise PackwrapError(f"{where}: percent {percent!r} is not a whole number") from None
        if not 0 <= percent_i <= 100:
            raise PackwrapError(f"{where}: percent {percent_i} is outside 0..100")
        total += percent_i
        lines.append(f"{mount} {size}" + (f" {percent_i}%" if percent_i else ""))
    if "/" not in mounts:
        raise PackwrapError("disklabel_layout has no '/' partition (the installer requires one)")
    if total > 100:
        raise PackwrapError(f"disklabel_layout percentages add up to {total}% (more than 100%)")
    return "\n".join(lines) + "\n"
