"""The qemu builder's artifact (packer-plugin-qemu: BuilderId transcend.qemu, Id VM)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.sdk import Artifact
from packwrap_qemu.config import config_of

if TYPE_CHECKING:
    from packwrap.sdk import State

BUILDER_ID = "transcend.qemu"
#: packwrap's logs, when they land in the output directory: not part of the image.
LOG_SUFFIXES = (".console.log", ".qemu.log")


def artifact_files(out: Path) -> list[str]:
    return sorted(
        str(p)
        for p in out.rglob("*")
        if p.is_file() and not p.is_symlink() and not p.name.endswith(LOG_SUFFIXES)
    )


def make_artifact(state: State) -> Artifact:
    config = config_of(state)
    out = Path(state.data["output_dir"])
    disk = Path(state.data["disk_path"])
    return Artifact(
        builder_id=BUILDER_ID,
        id="VM",
        files=artifact_files(out),
        description=f"VM files in directory: {out}",
        state={
            "generated_data": dict(state.data.get("generated_data", {})),
            "diskName": state.data["vm_name"],
            "diskPaths": [str(disk), *map(str, state.data.get("extra_disk_paths", []))],
            "diskType": config.format,
            "diskSize": str(config.disk_size),
            "domainType": state.data.get("qemu_accelerator", ""),
        },
    )
