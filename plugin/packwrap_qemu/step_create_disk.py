"""Create the disk image with qemu-img: empty, or from a cached install.

On an install cache hit the disk is a qcow2 overlay of the cached disk when the build
boots it again to provision (StepConvertDisk flattens it at the end), and a copy of it
when the build only installs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from packwrap.sdk import Step, cache_hit, clone_or_copy
from packwrap_qemu import qemu
from packwrap_qemu.config import config_of

if TYPE_CHECKING:
    from pathlib import Path

    from packwrap.sdk import State
    from packwrap_qemu.config import QemuConfig


class StepCreateDisk(Step):
    name = "create disk"

    def run(self, state: State) -> None:
        config = config_of(state)
        path = state.data["output_dir"] / state.data["vm_name"]
        state.data.setdefault("cleanup_hints", []).append(f"disk image: rm {path.resolve()}")
        if cache_hit(state) is not None:
            self._from_cache(state, config, path)
        else:
            state.ui.say(f"Creating {config.format} disk {path} ({config.disk_size})")
            extra = list((config.qemu_img_args or {}).get("create", []))
            qemu.driver(state).create_disk(path, config.format, config.disk_size, extra)
        state.data["disk_path"] = path

    @staticmethod
    def _from_cache(state: State, config: QemuConfig, path: Path) -> None:
        entry = cache_hit(state)
        assert entry is not None
        if config.communicator != "ssh":  # install only: the cached disk is the result
            state.ui.say(f"Copying the cached install to {path}")
            clone_or_copy(entry.disk, path, state.check_cancelled)
            return
        state.ui.say(f"Creating qcow2 disk {path} over the cached install {entry.short_key}")
        base_format = str(entry.meta.get("disk_format") or config.format)
        qemu.driver(state).create_overlay(path, entry.disk, base_format)
        state.data["disk_format"] = "qcow2"
        state.data["disk_overlay"] = True
