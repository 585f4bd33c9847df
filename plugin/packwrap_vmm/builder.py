"""The `openbsd-vmm` builder: the Go plugin's steps (packer-builder-openbsd-vmm), its bugs fixed.

output dir -> vmctl create -> vmctl start (install; console opened) -> HTTP server
(core; after the start, as in the Go plugin, so {{ .HTTPIP }} = 100.64.<id>.2 is
known) -> generated files -> [site set (core)] -> boot command (core; boot_wait
once, {{ .Name }} = vm_name) -> wait for the install to end -> [second boot from
disk -> connect -> provision -> shutdown] when provisioning is wanted (see config).
The install cache (core) is looked up before the disk is made and stored right after the
install; on a hit the disk comes from the cached install and every install step (from
the install boot to its end, wrapped in If(installing, ...)) is skipped. A build
provisioned on an overlay of the cached install ends by flattening it
(step_flatten_disk.py), before any post-processor sees the image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from packwrap.sdk import (
    If,
    Schema,
    Step,
    StepCheckProvisioners,
    StepCleanupTemporaryKey,
    StepConnect,
    StepHTTPServer,
    StepInstallCacheLookup,
    StepInstallCacheStore,
    StepInstallerDriftGuard,
    StepLocalSets,
    StepOutputDir,
    StepProvision,
    StepShutdown,
    StepSiteSet,
    StepTemporaryKey,
    StepTypeBootCommand,
    final_guest_steps,
    installing,
)
from packwrap_vmm import vmm
from packwrap_vmm.artifact import make_artifact
from packwrap_vmm.config import SCHEMA, VmmConfig, config_of, wants_provisioning
from packwrap_vmm.step_console_wait import StepAwaitConsole
from packwrap_vmm.step_create_disk import StepCreateDisk
from packwrap_vmm.step_flatten_disk import StepFlattenDisk
from packwrap_vmm.step_gen_files import StepGenFiles
from packwrap_vmm.step_start_vm import StepStartVM
from packwrap_vmm.step_wait_install import StepWaitInstall

if TYPE_CHECKING:
    from packwrap.sdk import Artifact, State


def _provisions(state: State) -> bool:
    """Decided when its turn comes: it depends on the template's provisioners."""
    return wants_provisioning(config_of(state), bool(state.provisioners))


def _installs_and_provisions(state: State) -> bool:
    """A new temporary key: a cached install brings back the one it was made with."""
    return installing(state) and _provisions(state)


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
        install_only: list[Step] = [
            StepStartVM("install"),
            If(_installs_and_provisions, StepTemporaryKey()),
            StepHTTPServer(),
            StepGenFiles(),
            StepSiteSet(),
            StepLocalSets(),
            StepAwaitConsole(),
            StepInstallerDriftGuard(),
            StepTypeBootCommand(),
            StepWaitInstall(),
        ]
        install: list[Step] = [
            StepCheckProvisioners(),
            StepOutputDir(vmm.output_plan),
            StepInstallCacheLookup(vmm.install_inputs),
            StepCreateDisk(),
            *[If(installing, s) for s in install_only],
            StepInstallCacheStore(),
        ]
        # Provisioning slots: the core's connect/provision/shutdown steps, run only when
        # the build provisions (a vmctl stop ends the VM when there is no shutdown_command).
        shutdown = StepShutdown(_wait_stopped, _force_stop, _request_stop)
        provision: list[Step] = [
            StepStartVM("provision"),
            StepConnect(),
            StepProvision(),
            *final_guest_steps(),
            StepCleanupTemporaryKey(),
            shutdown,
        ]
        return [*install, *[If(_provisions, s) for s in provision], StepFlattenDisk()]

    def http_ip(self, config: VmmConfig, state: State) -> str:
        return state.data.get("host_ip", "")

    def artifact(self, config: VmmConfig, state: State) -> Artifact:
        return make_artifact(config, state.data.get("disk_path") or str(vmm.disk_path(state)))
