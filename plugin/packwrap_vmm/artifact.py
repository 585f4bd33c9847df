"""The Go plugin's artifact (packer-builder-openbsd-vmm): one disk image file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from packwrap.sdk import Artifact

if TYPE_CHECKING:
    from packwrap_vmm.config import VmmConfig

BUILDER_ID = "packer.openbsd-vmm"


def make_artifact(config: VmmConfig, disk: str) -> Artifact:
    return Artifact(
        builder_id=BUILDER_ID,
        id="VMM",
        files=[disk],
        description=f"Image: {config.vm_name}",
        state={
            "diskName": f"{config.vm_name}.{config.disk_format}",
            "diskType": config.disk_format,
        },
    )
