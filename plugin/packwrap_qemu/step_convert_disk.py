"""Compact (and optionally compress) a qcow2 disk with `qemu-img convert` (Packer's
stepConvertDisk): the result replaces the disk atomically. A disk made over a cached
install is flattened the same way into a standalone `format` image, unless
use_backing_file asks to keep it layered over the cache entry."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.sdk import CachedDisk, Step, cached_disk, must_flatten
from packwrap_qemu import qemu
from packwrap_qemu.config import config_of

if TYPE_CHECKING:
    from packwrap.sdk import State


class StepConvertDisk(Step):
    name = "convert disk"

    def run(self, state: State) -> None:
        config = config_of(state)
        overlay = must_flatten(state)  # over a cached install: flatten
        if cached_disk(state) is CachedDisk.LAYERED:
            backing = state.data.get("disk_backing_file", "the cached install")
            state.ui.say(f"Keeping the disk layered over {backing} (use_backing_file)")
            return
        if not overlay and (config.format == "raw" or config.skip_compaction):
            return
        disk = Path(state.data["disk_path"])
        tmp = disk.with_name(disk.name + ".convert")
        what = "Compressing" if config.disk_compression else "Compacting"
        if overlay:
            what = "Flattening (standalone image)"
        state.ui.say(f"{what} disk {disk}")
        extra = list((config.qemu_img_args or {}).get("convert", []))
        try:
            qemu.driver(state).convert_disk(
                disk, tmp, config.format, compress=config.disk_compression, extra=extra
            )
            os.replace(tmp, disk)
            state.data["disk_format"] = config.format
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
