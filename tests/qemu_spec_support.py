"""A QemuSpec with test defaults and an argv reader, shared by the qemu driver tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from packwrap_qemu.driver import QemuSpec

from packwrap.config.size import Size


def spec(**kw: Any) -> QemuSpec:
    base: dict[str, Any] = dict(binary="qemu-system-x86_64", machine="pc", accel="tcg",
                                cpu="max", memory=Size.of_mib(512), cpus=1,
                                disk_path=Path("/o/disk"), disk_format="qcow2",
                                qmp_path=Path("/t/qmp.sock"))  # fmt: skip
    base.update(kw)
    return QemuSpec(**base)


def pairs(argv: list[str], switch: str) -> list[str]:
    """The values that follow each occurrence of `switch` in argv."""
    return [argv[i + 1] for i, a in enumerate(argv) if a == switch]
