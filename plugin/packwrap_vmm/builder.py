"""The `openbsd-vmm` builder: the Go plugin's steps (packer.md §1.4), its bugs fixed.

output dir -> vmctl create -> vmctl start (install; console opened) -> HTTP server
(core; after the start, as in the Go plugin, so {{ .HTTPIP }} = 100.64.<id>.2 is
known) -> generated files -> [site set (core)] -> boot command (core; boot_wait
once, {{ .Name }} = vm_name) -> wait for the install to end -> [second boot from
disk -> connect -> provision -> shutdown] when provisioning is wanted (see config).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, ClassVar

from packwrap.build.step import Step
from packwrap.config.schema import Config, Schema
from packwrap_vmm import vmm
from packwrap_vmm.artifact import make_artifact
from packwrap_vmm.config import SCHEMA, wants_provisioning
from packwrap_vmm.step_console_wait import StepAwaitConsole
from packwrap_vmm.step_create_disk import StepCreateDisk
from packwrap_vmm.step_gen_files import StepGenFiles
from packwrap_vmm.step_output_dir import StepOutputDir, disk_path
from packwrap_vmm.step_start_vm import StepStartVM
from packwrap_vmm.step_wait_install import StepWaitInstall

if TYPE_CHECKING:
    from packwrap.build.artifact import Artifact
    from packwrap.build.state import State


def _core(module: str, cls: str, *args) -> Step | None:
    """A step the core provides, or None when this packwrap has none."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(module.rsplit(".", 1)[0]):
            return None
        raise
    return getattr(mod, cls)(*args)


class _WhenProvisioning(Step):
    """Runs the wrapped step only when the build provisions (and cleans up only then)."""

    def __init__(self, step: Step):
        self.step = step
        self.name = step.name
        self.ran = False

    def run(self, state: State) -> None:
        if not wants_provisioning(state.config, bool(state.provisioners)):
            return
        self.ran = True
        self.step.run(state)

    def cleanup(self, state: State) -> None:
        if self.ran:
            self.step.cleanup(state)


def _when(step: Step | None) -> Step | None:
    return _WhenProvisioning(step) if step is not None else None


def _request_stop(state: State) -> None:
    vmm.driver(state).stop(state.config.vm_name)


def _force_stop(state: State) -> None:
    name = state.config.vm_name
    state.ui.say(f"Stopping VM {name} by force: vmctl stop -f -w {name}")
    vmm.driver(state).stop(name, force=True, wait=True)


def _wait_stopped(state: State, seconds: float) -> bool:
    return vmm.wait_gone(state, state.config.vm_name, seconds)


class VmmBuilder:
    type_name: ClassVar[str] = "openbsd-vmm"
    schema: ClassVar[Schema] = SCHEMA

    def steps(self, config: Config) -> list[Step]:
        install: list[Step | None] = [
            _core("packwrap.provision.step", "StepCheckProvisioners"),
            StepOutputDir(),
            StepCreateDisk(),
            StepStartVM("install"),
            _when(_core("packwrap.communicator.steps", "StepTemporaryKey")),
            _core("packwrap.build.steps.http_server", "StepHTTPServer"),
            StepGenFiles(),
            _core("packwrap.build.steps.site_set", "StepSiteSet"),
            StepAwaitConsole(),
            _core("packwrap.build.steps.boot_command", "StepTypeBootCommand"),
            StepWaitInstall(),
        ]
        # Provisioning slots: the core's connect/provision/shutdown steps, run only when
        # the build provisions (a vmctl stop ends the VM when there is no shutdown_command).
        shutdown = _core(
            "packwrap.provision.shutdown", "StepShutdown", _wait_stopped, _force_stop, _request_stop
        )
        provision: list[Step | None] = [
            StepStartVM("provision"),
            _core("packwrap.communicator.steps", "StepConnect"),
            _core("packwrap.provision.step", "StepProvision"),
            _core("packwrap.communicator.steps", "StepCleanupTemporaryKey"),
            shutdown,
        ]
        steps = [s for s in install if s is not None]
        steps += [_WhenProvisioning(s) for s in provision if s is not None]
        return steps

    def http_ip(self, config: Config, state: State) -> str:
        return state.data.get("host_ip", "")

    def artifact(self, config: Config, state: State) -> Artifact:
        return make_artifact(config, state.data.get("disk_path") or str(disk_path(state)))
