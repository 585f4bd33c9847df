"""The `openbsd-vmm` builder: the Go plugin's steps (packer.md §1.4), its bugs fixed.

output dir -> vmctl create -> vmctl start (install; console opened) -> HTTP server
(core; after the start, as in the Go plugin, so {{ .HTTPIP }} = 100.64.<id>.2 is
known) -> generated files -> [site set (core)] -> boot command (core; boot_wait
once, {{ .Name }} = vm_name) -> wait for the install to end -> [second boot from
disk -> connect -> provision -> shutdown] when provisioning is wanted (see config).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from packwrap.build.step import Step
from packwrap.build.steps.boot_command import StepTypeBootCommand
from packwrap.build.steps.http_server import StepHTTPServer
from packwrap.build.steps.site_set import StepSiteSet
from packwrap.communicator.steps import StepCleanupTemporaryKey, StepConnect, StepTemporaryKey
from packwrap.config.schema import Schema
from packwrap.provision.shutdown import StepShutdown
from packwrap.provision.step import StepCheckProvisioners, StepProvision
from packwrap_vmm import vmm
from packwrap_vmm.artifact import make_artifact
from packwrap_vmm.config import SCHEMA, VmmConfig, config_of, wants_provisioning
from packwrap_vmm.step_console_wait import StepAwaitConsole
from packwrap_vmm.step_create_disk import StepCreateDisk
from packwrap_vmm.step_gen_files import StepGenFiles
from packwrap_vmm.step_output_dir import StepOutputDir, disk_path
from packwrap_vmm.step_start_vm import StepStartVM
from packwrap_vmm.step_wait_install import StepWaitInstall

if TYPE_CHECKING:
    from packwrap.build.artifact import Artifact
    from packwrap.build.state import State


class _WhenProvisioning(Step):
    """Runs the wrapped step only when the build provisions (and cleans up only then)."""

    def __init__(self, step: Step):
        self.step = step
        self.name = step.name
        self.ran = False

    def run(self, state: State) -> None:
        if not wants_provisioning(config_of(state), bool(state.provisioners)):
            return
        self.ran = True
        self.step.run(state)

    def cleanup(self, state: State) -> None:
        if self.ran:
            self.step.cleanup(state)


def _request_stop(state: State) -> None:
    vmm.driver(state).stop(config_of(state).vm_name)


def _force_stop(state: State) -> None:
    name = config_of(state).vm_name
    state.ui.say(f"Stopping VM {name} by force: vmctl stop -f -w {name}")
    vmm.driver(state).stop(name, force=True, wait=True)


def _wait_stopped(state: State, seconds: float) -> bool:
    return vmm.wait_gone(state, config_of(state).vm_name, seconds)


class VmmBuilder:
    type_name: ClassVar[str] = "openbsd-vmm"
    schema: ClassVar[Schema[VmmConfig]] = SCHEMA

    def steps(self, config: VmmConfig) -> list[Step]:
        install: list[Step] = [
            StepCheckProvisioners(),
            StepOutputDir(),
            StepCreateDisk(),
            StepStartVM("install"),
            _WhenProvisioning(StepTemporaryKey()),
            StepHTTPServer(),
            StepGenFiles(),
            StepSiteSet(),
            StepAwaitConsole(),
            StepTypeBootCommand(),
            StepWaitInstall(),
        ]
        # Provisioning slots: the core's connect/provision/shutdown steps, run only when
        # the build provisions (a vmctl stop ends the VM when there is no shutdown_command).
        shutdown = StepShutdown(_wait_stopped, _force_stop, _request_stop)
        provision: list[Step] = [
            StepStartVM("provision"),
            StepConnect(),
            StepProvision(),
            StepCleanupTemporaryKey(),
            shutdown,
        ]
        return install + [_WhenProvisioning(s) for s in provision]

    def http_ip(self, config: VmmConfig, state: State) -> str:
        return state.data.get("host_ip", "")

    def artifact(self, config: VmmConfig, state: State) -> Artifact:
        return make_artifact(config, state.data.get("disk_path") or str(disk_path(state)))
