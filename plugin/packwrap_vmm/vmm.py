"""Per-build helpers shared by the steps: the driver, the VM's name, its addresses."""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from typing import TYPE_CHECKING

from packwrap_vmm.driver import Driver

if TYPE_CHECKING:
    from packwrap.build.state import State


def driver(state: State) -> Driver:
    """The build's Driver (one per build; vmctl_path / doas from the config)."""
    drv = state.data.get("vmm_driver")
    if drv is None:
        drv = Driver(state.config.get("vmctl_path"), doas=bool(state.config.get("doas")))
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
