"""`vmctl create [-b base | -s size] fmt:<out>/<vm_name>.<fmt>`; a failed build's disk goes.

On an install cache hit (the rule: choose_cached_disk in
packwrap/build/steps/install_cache.py) a build that provisions (qcow2) boots a `vmctl
create -b <cached disk>` overlay: the hidden `<out>/.<vm_name>.qcow2.overlay`, which
step_flatten_disk.py turns into the standalone `<vm_name>.qcow2` at the end, or, with
use_backing_file, `<vm_name>.qcow2` itself, kept layered over the cache entry. A raw
build and an install-only build copy the cached disk instead.

Always run as the user, also with doas = true (vmctl create talks to no vmd): the image
is the user's, not a root-owned 0600 file.

The Go plugin left a half-installed image behind after a failure; here the cleanup
removes it (the runner skips cleanups under -on-error=abort, and lists the disk then).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from packwrap.sdk import (
    CachedDisk,
    PackwrapError,
    Step,
    cache_hit,
    choose_cached_disk,
    clone_or_copy,
)
from packwrap_vmm.config import config_of, media_path, wants_provisioning
from packwrap_vmm.vmm import disk_path, driver, overlay_path

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


def _clear_stale_overlay(state: State, path: Path) -> None:
    """Only a build stopped with -on-error=abort leaves its overlay (and says so)."""
    if not path.exists():
        return
    if not state.options.force:
        raise PackwrapError(
            f"{path} exists, left by an earlier build of {config_of(state).vm_name} "
            "stopped with -on-error=abort; remove it or use -force"
        )
    state.ui.say(f"Deleting the previous overlay {path} (-force)")
    path.unlink()


class StepCreateDisk(Step):
    name = "create disk"

    def __init__(self) -> None:
        self.path: Path | None = None

    def run(self, state: State) -> None:
        cfg = config_of(state)
        path = disk_path(state)
        entry = cache_hit(state)
        if entry is not None:
            self._from_cache(state, path)
            return
        base = media_path(cfg.disk_base, state.template_dir)
        if base:
            check_base(state, base)
        what = f"from base {base}" if base else f"of {cfg.disk_size}"
        state.ui.say(f"Creating {cfg.disk_format} disk image {path} {what}")
        state.data.setdefault("cleanup_hints", []).append(f"disk image: rm {path}")
        driver(state).create(str(path), cfg.disk_format, size=cfg.disk_size, base=base)
        self.path = path
        state.data["disk_path"] = str(path)
        state.data["disk_image"] = str(path)  # the Go plugin's state key

    def _from_cache(self, state: State, path: Path) -> None:
        cfg = config_of(state)
        entry = cache_hit(state)
        assert entry is not None
        choice = choose_cached_disk(
            state,
            provisions=wants_provisioning(cfg, bool(state.provisioners)),
            use_backing_file=cfg.use_backing_file,
            # vmctl create -b reads its base as qcow2 (its header gives the size): a raw
            # cached disk cannot be one, so a raw build provisions on a copy.
            can_overlay=cfg.disk_format == "qcow2",
        )
        if choice is CachedDisk.OVERLAY:
            path = overlay_path(state)
            _clear_stale_overlay(state, path)
        state.data.setdefault("cleanup_hints", []).append(f"disk image: rm {path}")
        self.path = path
        if choice is CachedDisk.COPY:
            state.ui.say(f"Copying the cached install {entry.short_key} to {path}")
            clone_or_copy(entry.disk, path, state.check_cancelled)
        else:
            state.ui.say(
                f"Creating qcow2 overlay {path} on cached install {entry.short_key} "
                f"(vmctl create -b {entry.disk})"
            )
            driver(state).create(str(path), "qcow2", base=str(entry.disk))
        state.data["disk_path"] = state.data["disk_image"] = str(path)

    def cleanup(self, state: State) -> None:
        remove_unfinished(state, self.path)


def remove_unfinished(state: State, path: Path | None) -> None:
    """A failed build's disk goes (the Go plugin left a half-installed image behind)."""
    if path is not None and state.failed:
        state.ui.say(f"Removing disk image {path} (the build did not finish)")
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
