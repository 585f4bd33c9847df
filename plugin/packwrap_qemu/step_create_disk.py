"""Create the disks with qemu-img (Packer's stepCreateDisk, stepCopyDisk, stepResizeDisk).

Without disk_image: an empty disk of disk_size, or on an install cache hit a qcow2
overlay of the cached install when the build boots it again to provision (StepConvertDisk
flattens it at the end unless use_backing_file) and a copy of it when the build only
installs (the rule: choose_cached_disk in packwrap/build/steps/install_cache.py). With
disk_image: iso_url is an image to build on, copied (converted to `format`) or, with
use_backing_file, the backing file of a new qcow2 overlay (a layered image), then resized
to disk_size unless skip_resize_disk. disk_additional_size adds empty disks <vm_name>-1,
-2, ... beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.sdk import CachedDisk, Step, cache_hit, choose_cached_disk, clone_or_copy
from packwrap_qemu import qemu
from packwrap_qemu.config import config_of

if TYPE_CHECKING:
    from packwrap.sdk import State
    from packwrap_qemu.config import QemuConfig


class StepCreateDisk(Step):
    name = "create disk"

    def run(self, state: State) -> None:
        config = config_of(state)
        path = state.data["output_dir"] / state.data["vm_name"]
        args = config.qemu_img_args or {}
        drv = qemu.driver(state)
        hints = state.data.setdefault("cleanup_hints", [])
        if cache_hit(state) is not None:
            self._from_cache(state, config, path)
        elif config.disk_image:
            base = state.data["iso_path"]  # a Path, or a URL with iso_skip_cache
            if config.use_backing_file:
                state.ui.say(f"Creating qcow2 overlay {path} on {base}")
                drv.create_overlay(path, base, config.disk_size, list(args.get("create", [])))
            else:
                state.ui.say(f"Copying disk image {base} to {path}")
                drv.copy_image(base, path, config.format, list(args.get("convert", [])))
        else:
            state.ui.say(f"Creating {config.format} disk {path} ({config.disk_size})")
            drv.create_disk(path, config.format, config.disk_size, list(args.get("create", [])))
        state.data["disk_path"] = path
        hints.append(f"disk image: rm {path.resolve()}")
        extra = []
        for i, size in enumerate(config.disk_additional_size, start=1):
            disk = path.with_name(f"{path.name}-{i}")
            state.ui.say(f"Creating {config.format} disk {disk} ({size})")
            drv.create_disk(disk, config.format, size, list(args.get("create", [])))
            extra.append(disk)
        state.data["extra_disk_paths"] = extra

    @staticmethod
    def _from_cache(state: State, config: QemuConfig, path: Path) -> None:
        entry = cache_hit(state)
        assert entry is not None
        choice = choose_cached_disk(
            state, provisions=config.communicator == "ssh", use_backing_file=config.use_backing_file
        )
        if choice is CachedDisk.COPY:
            state.ui.say(f"Copying the cached install to {path}")
            clone_or_copy(entry.disk, path, state.check_cancelled)
            return
        state.ui.say(f"Creating qcow2 disk {path} over the cached install {entry.short_key}")
        qemu.driver(state).create_overlay(path, entry.disk, config.disk_size)
        state.data["disk_format"] = "qcow2"
        state.data["disk_backing_file"] = str(entry.disk)


class StepResizeDisk(Step):
    """disk_image only: grow the copied or layered disk to disk_size."""

    name = "resize disk"

    def run(self, state: State) -> None:
        config = config_of(state)
        if not config.disk_image or config.skip_resize_disk:
            return
        path = Path(state.data["disk_path"])
        state.ui.say(f"Resizing {path} to {config.disk_size}")
        extra = list((config.qemu_img_args or {}).get("resize", []))
        qemu.driver(state).resize_disk(path, config.format, config.disk_size, extra)
