"""Create the empty disk image with qemu-img."""

from __future__ import annotations

from typing import TYPE_CHECKING

from packwrap.sdk import Step
from packwrap_qemu import qemu
from packwrap_qemu.config import config_of

if TYPE_CHECKING:
    from packwrap.sdk import State


class StepCreateDisk(Step):
    name = "create disk"

    def run(self, state: State) -> None:
        config = config_of(state)
        path = state.data["output_dir"] / state.data["vm_name"]
        state.ui.say(f"Creating {config.format} disk {path} ({config.disk_size})")
        extra = list((config.qemu_img_args or {}).get("create", []))
        qemu.driver(state).create_disk(path, config.format, config.disk_size, extra)
        state.data["disk_path"] = path
        state.data.setdefault("cleanup_hints", []).append(f"disk image: rm {path.resolve()}")
