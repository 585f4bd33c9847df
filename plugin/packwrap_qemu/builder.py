"""The `qemu` builder: packer-plugin-qemu's step order, typed on the serial console.

Steps (packer.md §3.2): media -> output dir -> disk -> HTTP address -> HTTP server
(core) [-> site set (core)] -> SSH port forward -> QEMU -> boot command (core) ->
wait for power-off -> [provisioning] -> convert disk.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, ClassVar

from packwrap.build.step import Step
from packwrap.config.schema import Config, Schema
from packwrap.errors import PackwrapError
from packwrap_qemu.artifact import make_artifact
from packwrap_qemu.config import SCHEMA
from packwrap_qemu.step_convert_disk import StepConvertDisk
from packwrap_qemu.step_create_disk import StepCreateDisk
from packwrap_qemu.step_http_ip import StepHTTPIPDiscover
from packwrap_qemu.step_media import StepResolveMedia
from packwrap_qemu.step_output_dir import StepPrepareOutputDir
from packwrap_qemu.step_port_forward import StepPortForward
from packwrap_qemu.step_run import StepRunQemu
from packwrap_qemu.step_wait_poweroff import StepWaitForPowerOff

if TYPE_CHECKING:
    from packwrap.build.artifact import Artifact
    from packwrap.build.state import State


def _core_step(module: str, cls: str, config: Config) -> Step | None:
    """A step the build core provides (None if this packwrap has no such step)."""
    try:
        mod = importlib.import_module(f"packwrap.build.steps.{module}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("packwrap.build.steps"):
            return None
        raise
    step_cls = getattr(mod, cls)
    try:
        return step_cls(config)
    except TypeError:
        return step_cls()


class _NoProvisionersYet(Step):
    """Until the provisioning steps land (see QemuBuilder.provisioning_steps), refuse a
    build with provisioners up front rather than silently skipping them after the install."""

    name = "check provisioners"

    def run(self, state: State) -> None:
        if state.provisioners:
            raise PackwrapError(
                "the qemu builder does not run provisioners yet; remove them from the build "
                "block or build this source with `packer`"
            )


class QemuBuilder:
    type_name: ClassVar[str] = "qemu"
    schema: ClassVar[Schema] = SCHEMA

    def steps(self, config: Config) -> list[Step]:
        steps: list[Step | None] = [
            *([] if self.provisioning_steps(config) else [_NoProvisionersYet()]),
            StepResolveMedia(),
            StepPrepareOutputDir(),
            StepCreateDisk(),
            StepHTTPIPDiscover(),
            _core_step("http_server", "StepHTTPServer", config),
            _core_step("site_set", "StepSiteSet", config),
            StepPortForward(),
            StepRunQemu(),
            _core_step("boot_command", "StepTypeBootCommand", config),
            StepWaitForPowerOff(),
            *self.provisioning_steps(config),
            StepConvertDisk(),
        ]
        return [s for s in steps if s is not None]

    def provisioning_steps(self, config: Config) -> list[Step]:
        """After the install powered off: boot the disk, connect, provision, shut down.

        The place for provisioning (issue 7): StepRunQemu(boot="disk") (the installed disk,
        with the SSH hostfwd of StepPortForward), then StepConnect, StepProvision and a
        shutdown step (shutdown_command, else stop; StepWaitForPowerOff gives the
        shutdown_timeout wait and its error). With communicator = "none" there is nothing
        to do, as in Packer.
        """
        return []

    def http_ip(self, config: Config, state: State) -> str:
        return state.data["http_ip"]

    def artifact(self, config: Config, state: State) -> Artifact:
        return make_artifact(state)
