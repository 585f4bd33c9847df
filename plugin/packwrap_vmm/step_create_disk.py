"""`vmctl create [-b base | -s size] fmt:<out>/<vm_name>.<fmt>`; a failed build's disk goes.

On an install cache hit the disk is a copy of the cached install (standalone, as vmm
hosts have no qemu-img to flatten an overlay), or with use_backing_file (qcow2) a
`vmctl create -b <cached disk>` overlay of it.

Always run as the user, also with doas = true (vmctl create talks to no vmd): the image
is the user's, not a root-owned 0600 file.

The Go plugin left a half-installed image behind after a failure; here the cleanup
removes it (the runner skips cleanups under -on-error=abort, and lists the disk then).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from packwrap.sdk import PackwrapError, Step, cache_hit, clone_or_copy
from packwrap_vmm.config import config_of, media_path
from packwrap_vmm.vmm import disk_path, driver

if TYPE_CHECKING:
    from pathlib import Path

    from packwrap.sdk import State


QCOW_MAGIC = b"QFI\xfb"


def check_base(state: State, base: str) -> None:
    """vmctl create -b reads the base as qcow2 and takes the new disk's size from it."""
    try:
        with open(base, "rb") as fh:
            magic = fh.read(4)
    except OSError:
        return  # vmctl says why, quoted
    if magic != QCOW_MAGIC:
        raise PackwrapError(f"disk_base {base} is not a qcow2 image (vmctl create -b needs one)")
    if config_of(state).disk_size:
        state.ui.message("disk_size is ignored with disk_base: the size comes from the base")


class StepCreateDisk(Step):
    name = "create disk"

    def __init__(self) -> None:
        self.path: Path | None = None

    def run(self, state: State) -> None:
        cfg = config_of(state)
        path = disk_path(state)
        entry = cache_hit(state)
        if entry is not None and not (cfg.use_backing_file and cfg.disk_format == "qcow2"):
            state.ui.say(f"Copying the cached install {entry.short_key} to {path}")
            state.data.setdefault("cleanup_hints", []).append(f"disk image: rm {path}")
            self.path = path
            clone_or_copy(entry.disk, path, state.check_cancelled)
            state.data["disk_path"] = state.data["disk_image"] = str(path)
            return
        base = str(entry.disk) if entry is not None else None
        base = base or media_path(cfg.disk_base, state.template_dir)
        if base and entry is None:
            check_base(state, base)
        what = f"from base {base}" if base else f"of {cfg.disk_size}"
        state.ui.say(f"Creating {cfg.disk_format} disk image {path} {what}")
        state.data.setdefault("cleanup_hints", []).append(f"disk image: rm {path}")
        driver(state).create(str(path), cfg.disk_format, size=cfg.disk_size, base=base)
        self.path = path
        state.data["disk_path"] = str(path)
        state.data["disk_image"] = str(path)  # the Go plugin's state key

    def cleanup(self, state: State) -> None:
        if self.path is not None and state.failed:
            state.ui.say(f"Removing disk image {self.path} (the build did not finish)")
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
