"""Per-build helpers shared by the steps: the driver, the VM's disk, its addresses."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packwrap.sdk import OutputPlan, input_file_hash
from packwrap_vmm.config import config_of, install_boot_device, media_path
from packwrap_vmm.driver import Driver

if TYPE_CHECKING:
    from packwrap.sdk import State


def driver(state: State) -> Driver:
    """The build's Driver (one per build; vmctl_path / doas from the config)."""
    drv = state.data.get("vmm_driver")
    if drv is None:
        cfg = config_of(state)
        drv = Driver(cfg.vmctl_path, doas=cfg.doas)
        state.data["vmm_driver"] = drv
    return drv


def host_is_openbsd() -> bool:
    """vmd's own host: the tap exists and the HTTP server must listen on it."""
    return sys.platform.startswith("openbsd")


def is_local_address(address: str) -> bool:
    """True when this host has `address` (the VM's tap on OpenBSD): we can listen on it."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return True
    return False


def wait_gone(state: State, name: str, seconds: float, *, interval: float = 1.0) -> bool:
    """Poll `vmctl status NAME` until the VM is gone or stopped; False on timeout."""
    drv = driver(state)
    deadline = state.deadline(seconds)
    while True:
        row = drv.find(name)
        if row is None or not row.running:
            return True
        if time.monotonic() >= deadline:
            return False
        state.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def disk_path(state: State) -> Path:
    """<output_directory>/<vm_name>.<disk_format>, absolute."""
    cfg = config_of(state)
    out = Path(os.path.expanduser(cfg.output_directory))
    return (out / f"{cfg.vm_name}.{cfg.disk_format}").absolute()


def overlay_path(state: State) -> Path:
    """The overlay a build on a cached install provisions on, beside its image: hidden
    (a vm_name starts with a letter, so no other build's image has this name)."""
    disk = disk_path(state)
    return disk.with_name(f".{disk.name}.overlay")


def output_plan(state: State) -> OutputPlan:
    """The Go plugin's rule (its check fixed): the directory may be shared; only this
    build's image must not exist yet. The Go plugin checked `<out>/<name>/<fmt>`, so its
    check never fired (packer-builder-openbsd-vmm)."""
    disk = disk_path(state)
    return OutputPlan(vm_name=config_of(state).vm_name, directory=disk.parent, image=disk)


def install_inputs(state: State) -> dict[str, Any]:
    """The vmm builder's part of the install cache key: medium, disk and machine (the
    core adds the boot command, the served files and the answers)."""
    cfg = config_of(state)
    here = state.template_dir
    return {
        "disk_format": cfg.disk_format,
        "disk": {
            "size": cfg.disk_size.bytes if cfg.disk_size else None,
            "base": input_file_hash(media_path(cfg.disk_base, here)),
        },
        "machine": {
            "memory": cfg.memory.bytes if cfg.memory else None,  # the installer sizes swap
            "vm_template": cfg.vm_template,
        },
        "medium": {
            "boot_device": install_boot_device(cfg),
            "boot": input_file_hash(media_path(cfg.boot, here)),
            "cdrom": input_file_hash(media_path(cfg.cdrom, here)),
        },
        "gen_files": [cfg.gen_files_extension, cfg.gen_files_pattern or cfg.vm_name],
    }
