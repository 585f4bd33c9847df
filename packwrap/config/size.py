"""Size: a byte count with one grammar for `disk_size` and `memory` in every builder.

The grammar (the one place that says it):
- a bare number, an HCL number or a numeric string, means MiB. That is Packer's qemu
  plugin rule for disk_size (`20480` -> `20480M`) and QEMU's rule for `-m`. vmctl reads
  a bare number as bytes, so the vmm builder used to pass `20480` through and fail at
  build time ("size must be at least one megabyte"); one meaning for both builders is
  the point of this type.
- a number with a unit: K, M, G, T (case-insensitive), optionally followed by `B` or
  `iB` (`2G`, `2GB`, `2GiB` are all the same); always binary (1024), as qemu-img and
  OpenBSD's scan_scaled(3) read them. `B` alone means bytes (qemu-img's `b`).
- a decimal fraction is allowed with a unit (`1.5G`, as scan_scaled allows) when it
  comes out to whole bytes; `1.1B` or a bare `1.5` is an error rather than a silent
  rounding.
Zero and negative sizes are errors. Each driver formats the bytes for its own tool
(packwrap_qemu.driver.qemu_img_size, packwrap_vmm.driver.vmctl_size); what a tool
cannot express (vmctl's whole MiB) is a builder check, not a second grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KIB = 1024
MIB = KIB**2
_UNITS = {"": MIB, "B": 1, "K": KIB, "M": MIB, "G": KIB**3, "T": KIB**4}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:([KMGT])(?:I?B)?|(B))?$", re.IGNORECASE)
EXPECTED = "expected a size like 1500M or 2G (a bare number is MiB)"
# Memory for both builders and vmm's disk: vmctl takes whole MiB (and rounds anything
# else down with only a warning), QEMU's -m is MiB too. Only qemu-img takes bytes.
WHOLE_MIB = "must be a whole number of MiB"


@dataclass(frozen=True, order=True)
class Size:
    """A positive number of bytes; `text` is what the user wrote (kept for messages and
    Packer's artifact metadata, not compared)."""

    bytes: int
    text: str = field(default="", compare=False)

    def __str__(self) -> str:
        return self.text or f"{self.bytes}B"

    @property
    def whole_mib(self) -> bool:
        return self.bytes % MIB == 0

    @property
    def mib(self) -> int:
        """Whole MiB, rounded up (QEMU's -m and vmctl's -s/-m take MiB)."""
        return -(-self.bytes // MIB)

    @classmethod
    def of_mib(cls, mib: int) -> Size:
        return cls(mib * MIB, f"{mib}M")


def parse_size(value: object) -> Size:
    """The Option parse hook for sizes; ValueError(reason) on anything else."""
    if isinstance(value, Size):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(EXPECTED)
    text = str(value).strip()
    if isinstance(value, float):
        text = repr(value).removesuffix(".0")
    m = _SIZE.match(text)
    if not m:
        raise ValueError(EXPECTED)
    number, unit, byte_unit = m.groups()
    unit = (unit or byte_unit or "").upper()
    if "." in number and not unit:
        raise ValueError("a bare number is MiB and must be whole; write 1536M, not 1.5")
    whole, _, fraction = number.partition(".")
    scaled, rest = divmod(int(whole + fraction) * _UNITS[unit], 10 ** len(fraction))
    if rest:
        raise ValueError("is not a whole number of bytes")
    if scaled <= 0:
        raise ValueError("must be greater than zero")
    return Size(scaled, text if unit else f"{number}M")
