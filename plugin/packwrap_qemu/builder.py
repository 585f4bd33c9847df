"""The `qemu` builder: packer-plugin-qemu's step order, typed on the serial console.

Steps (packer-plugin-qemu's builder.go): media -> output dir -> install cache lookup
(core) -> vTPM -> floppy -> disk (create, copy disk_image, or over a cached install) ->
resize -> UEFI vars -> HTTP address -> HTTP server (core) [-> site set (core)] -> SSH port
forward -> QEMU -> boot command (core) -> wait for power-off -> store the install (core)
-> [communicator "ssh": temporary key (before the HTTP server), QEMU again on the
installed disk -> connect -> provision -> remove the temporary key -> shutdown] ->
convert disk. On an install cache hit the disk is a qcow2 overlay of the cached one (a
copy without a communicator) and the install steps, wrapped in If(installing, ...), are
skipped. disk_image builds (an image to build on, not an install) never use the cache.
"""

from __future__ import annotations

import time
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
from packwrap_qemu import qemu
from packwrap_qemu.artifact import make_artifact
from packwrap_qemu.config import SCHEMA, QemuConfig, config_of
from packwrap_qemu.firmware import StepPrepareEfiVars, efi_enabled
from packwrap_qemu.step_convert_disk import StepConvertDisk
from packwrap_qemu.step_create_disk import StepCreateDisk, StepResizeDisk
from packwrap_qemu.step_floppy import StepCreateFloppy
from packwrap_qemu.step_http_ip import StepHTTPIPDiscover
from packwrap_qemu.step_media import StepResolveMedia
from packwrap_qemu.step_port_forward import StepPortForward
from packwrap_qemu.step_run import StepRunQemu
from packwrap_qemu.step_vtpm import StepStartVtpm
from packwrap_qemu.step_wait_guest_address import StepWaitGuestAddress
from packwrap_qemu.step_wait_poweroff import StepWaitForPowerOff

if TYPE_CHECKING:
    from packwrap.sdk import Artifact, State


def _provisions(state: State) -> bool:
    return QemuBuilder.provisions(config_of(state))


def _installs(state: State) -> bool:
    """An install run that ends by powering off (not disk_image + ssh, which Packer
    boots once and provisions in the same run)."""
    config = config_of(state)
    return not (config.disk_image and QemuBuilder.provisions(config))


def _boots_again(state: State) -> bool:
    return _provisions(state) and _installs(state)


def _installs_now(state: State) -> bool:
    """An install run that ends by powering off, and no cached install in its place."""
    return installing(state) and _installs(state)


def _cacheable(state: State) -> bool:
    """The install cache is for installs: not for disk_image, an image to build on."""
    return not config_of(state).disk_image


def _installs_and_provisions(state: State) -> bool:
    """A new temporary key: a cached install brings back the one it was made with."""
    return installing(state) and _provisions(state)


def _wait_stopped(state: State, seconds: float) -> bool:
    """StepShutdown's wait: True once the provisioning QEMU has exited."""
    vm = state.data["qemu"]
    deadline = state.deadline(seconds)
    while vm.exit_code is None:
        if time.monotonic() >= deadline:
            return False
        state.sleep(0.1)
    return True


def _force_stop(state: State) -> None:
    """Packer's driver.Stop: end the QEMU process (SIGTERM, then SIGKILL)."""
    vm = state.data["qemu"]
    if vm.exit_code is None:
        state.ui.say(f"Stopping QEMU (pid {vm.pid}) by force")
        vm.stop()


class QemuBuilder:
    type_name: ClassVar[str] = "qemu"
    schema: ClassVar[Schema[QemuConfig]] = SCHEMA

    def steps(self, config: QemuConfig) -> list[Step]:
        return [
            StepCheckProvisioners(),
            StepResolveMedia(),
            StepOutputDir(qemu.output_plan, name="prepare output directory"),
            If(_cacheable, StepInstallCacheLookup(qemu.install_inputs)),
            StepStartVtpm(),
            StepCreateFloppy(),
            StepCreateDisk(),
            StepResizeDisk(),
            StepPrepareEfiVars(),
            StepHTTPIPDiscover(),
            # Before the HTTP server: install.conf may name {{ .SSHPublicKey }}.
            If(_installs_and_provisions, StepTemporaryKey()),
            StepHTTPServer(),
            If(installing, StepSiteSet()),
            If(installing, StepLocalSets()),
            StepPortForward(),
            If(installing, StepRunQemu()),
            If(installing, StepInstallerDriftGuard()),
            If(installing, StepTypeBootCommand()),
            If(_installs_now, StepWaitForPowerOff()),
            If(_cacheable, StepInstallCacheStore()),
            *self.provisioning_steps(),
            StepConvertDisk(),
        ]

    @staticmethod
    def provisions(config: QemuConfig) -> bool:
        """Packer's rule: communicator "ssh" (its default) boots the disk and connects."""
        return config.get("communicator") == "ssh"

    def provisioning_steps(self) -> list[Step]:
        """After the install powered off: boot the disk, connect, provision, shut down.

        QEMU runs a second time (StepRunQemu(boot="disk")): the install run ends on the
        installer's reboot (-no-reboot), exactly as without provisioning, and the
        provisioning run boots the installed disk without the install media (or
        provision_kernel), like the reboot of a real machine whose CD was taken out. One
        run could not drop the ISO nor change the kernel arguments at the reset.
        The SSH port is the hostfwd StepPortForward chose (127.0.0.1:<port> -> guest:22).
        communicator = "none": no second boot; provisioners are reported as skipped.
        disk_image (an installed image to build on) with "ssh": one run, as Packer's.
        """
        return [
            If(_boots_again, StepRunQemu(boot="disk")),
            StepWaitGuestAddress(),  # net_bridge without ssh_host (its applies())
            If(_provisions, StepConnect()),
            StepProvision(),
            *[If(_provisions, step) for step in final_guest_steps()],
            If(_provisions, StepCleanupTemporaryKey()),
            If(_provisions, StepShutdown(_wait_stopped, _force_stop)),
        ]

    def http_ip(self, config: QemuConfig, state: State) -> str:
        return state.data["http_ip"]

    @staticmethod
    def boots_efi(config: QemuConfig) -> bool:
        """The installer starts through UEFI (the answers depend on it: disk_partitioning)."""
        return efi_enabled(config)

    def artifact(self, config: QemuConfig, state: State) -> Artifact:
        return make_artifact(state)
