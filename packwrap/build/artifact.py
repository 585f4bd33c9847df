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

    def with_files(self, builder_id: str, files: list[str]) -> Artifact:
        """A post-processor's artifact: these files, this artifact's state (Packer's
        "Created artifact from files: ..." description)."""
        return Artifact(
            builder_id=builder_id,
            id="",
            files=files,
            description="Created artifact from files: " + ", ".join(files),
            state=dict(self.state),
        )
