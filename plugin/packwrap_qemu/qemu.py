"""Per-build helpers shared by the qemu steps: the driver and where the build writes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from packwrap.sdk import OutputPlan
from packwrap_qemu.config import config_of, names
from packwrap_qemu.driver import Driver

if TYPE_CHECKING:
    from packwrap.sdk import State


def driver(state: State) -> Driver:
    """The build's Driver (one per build)."""
    drv = state.data.get("qemu_driver")
    if drv is None:
        drv = Driver()
        state.data["qemu_driver"] = drv
    return drv


def output_plan(state: State) -> OutputPlan:
    """Packer's rule: the build owns its output directory (output-<build name>)."""
    vm_name, out = names(config_of(state), state.source_name)
    return OutputPlan(vm_name=vm_name, directory=out)
