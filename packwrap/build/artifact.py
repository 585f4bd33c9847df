"""What a build produces (Packer's Artifact interface)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Artifact:
    builder_id: str  # e.g. "packer.openbsd-vmm", "transcend.qemu"
    id: str  # e.g. "VMM", "VM"
    files: list[str]
    description: str  # Packer's String()
    state: dict[str, Any] = field(default_factory=dict)  # generated_data etc.
