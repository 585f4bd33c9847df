"""Start QEMU paused, open its serial console, then let it run.

QEMU starts with -S; the pty it made for the serial line is found through QMP
(query-chardev) and opened before `cont`, so no early console output is lost.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.sdk import Step, render_template, template_data
from packwrap_qemu import display, driver, machine, qemu, usernet, vnc
from packwrap_qemu.config import QemuConfig, config_of

if TYPE_CHECKING:
    from packwrap.sdk import SerialConsole, State


def render_qemuargs(args: list[list[str]], data: dict[str, object]) -> list[list[str]]:
    """qemuargs with Packer's template data ({{ .HTTPIP }}, {{ .OutputDir }}, ...)."""
    return [[render_template(part, data, what="qemuargs") for part in arg] for arg in args]


def log_paths(state: State) -> tuple[Path, Path]:
    """(console log, QEMU stderr log): in the build's log dir, else next to the disk."""
    log_dir = Path(state.data.get("log_dir") or state.data["output_dir"])
    log_dir.mkdir(parents=True, exist_ok=True)
    vm = state.data["vm_name"]
    return log_dir / f"{vm}.console.log", log_dir / f"{vm}.qemu.log"


def build_spec(
    state: State, qmp_path: Path, accelerator: str, screen: display.Display | None = None
) -> driver.QemuSpec:
    config = config_of(state)
    binary = config.qemu_binary
    machine_type = machine.machine_arg(binary, config.machine_type, accelerator)
    http_port = state.data.get("http_port") or None  # 0: no HTTP server
    data = {  # the core's fields (HTTPIP, HTTPPort, Name, ...) and packer-plugin-qemu's
        **template_data(state),
        "HTTPDir": config.get("http_directory") or "",
        "OutputDir": state.data["output_dir"],
        "SSHHostPort": state.data.get("ssh_host_port", ""),
    }
    screen = screen or display.choose(config)
    return driver.QemuSpec(
        binary=config.qemu_binary,
        machine=machine_type,
        accel=accelerator,
        cpu=machine.cpu_arg(binary, config.cpu_model, accelerator),
        memory=config.memory,
        cpus=config.cpus,
        sockets=config.sockets,
        cores=config.cores,
        threads=config.threads,
        disk_path=Path(state.data["disk_path"]).resolve(),
        disk_format=state.data.get("disk_format") or config.format,  # an overlay: qcow2
        disk_interface=config.disk_interface,
        disk_cache=config.disk_cache,
        disk_discard=config.disk_discard,
        disk_detect_zeroes=config.disk_detect_zeroes,
        qmp_path=qmp_path,
        iso_path=None if state.data.get("iso_kind") == "image" else state.data.get("iso_path"),
        extra_disks=[Path(p).resolve() for p in state.data.get("extra_disk_paths", [])],
        floppy_path=state.data.get("floppy_path"),
        tpm_socket=state.data.get("tpm_socket"),
        tpm_device=config.tpm_device_type or machine.profile(binary).tpm_device,
        net_bridge=config.net_bridge,
        cdrom_interface=config.cdrom_interface or machine.profile(binary).cdrom_interface,
        iso_kind=state.data.get("iso_kind", "cdrom"),
        boot_order=machine.has_boot_order(binary, machine_type),
        cd_path=state.data.get("cd_path"),
        kernel=state.data.get("kernel_path"),
        initrd=state.data.get("initrd_path"),
        kernel_args=config.kernel_args or "",
        serial_console=config.serial_console,
        display=screen.value,
        vnc=vnc.vnc_arg(config, password=bool(state.data.get("vnc_password"))),
        vga=config.vga,
        firmware=config.firmware,
        use_pflash=config.use_pflash,
        efi_code=state.data.get("efi_code"),
        efi_vars=state.data.get("efi_vars"),
        net_device=config.net_device,
        hermetic=config.hermetic_network,
        user_net=state.data.get("user_net", usernet.DEFAULT),
        http_port=http_port,
        fwd_command=driver.guestfwd_command(),
        ssh_host_port=state.data.get("ssh_host_port"),
        mac_address=state.data.get("guest_mac"),
        ssh_guest_port=config.get("ssh_port") or 22,
        no_reboot=config.no_reboot,
        user_args=render_qemuargs(config.qemuargs or [], data),
    )


def qmp_socket(config: QemuConfig, state: State) -> Path | None:
    """Where the user asked for QEMU's QMP socket: qmp_socket_path, or with qmp_enable
    Packer's default <output_directory>/<vm_name>.monitor; None: a private one."""
    if config.qmp_socket_path:
        return Path(config.qmp_socket_path).resolve()
    if config.qmp_enable:
        return (Path(state.data["output_dir"]) / f"{state.data['vm_name']}.monitor").resolve()
    return None


UNIX_PATH_MAX = 108  # sockaddr_un.sun_path on Linux, the closing NUL included


def listen_path(requested: Path) -> tuple[Path, str | None]:
    """Where QEMU listens for a QMP socket asked for at `requested`, and the private
    directory made for it (None: none). A unix socket path must fit sun_path; a longer
    one (a deep output_directory) gets a short private socket, and `requested` becomes a
    symlink to it: connect() follows symlinks, so Packer's path still reaches QEMU from
    a client that names it in fewer bytes (relative to its directory)."""
    if len(os.fsencode(requested)) < UNIX_PATH_MAX:
        return requested, None
    private = tempfile.mkdtemp(prefix="packwrap-qmp-")
    short = Path(private) / "qmp.sock"
    requested.symlink_to(short)
    return short, private


def _seabios(spec: driver.QemuSpec) -> bool:
    """QEMU's default x86 BIOS runs (its serial mirror applies): no firmware, no UEFI."""
    return not (spec.firmware or spec.efi_code) and spec.boot_order


class StepRunQemu(Step):
    """boot="install": from the ISO or kernel (the installer). boot="disk": the installed
    disk only (the provisioning boot); its logs get a `.disk` infix."""

    name = "start QEMU"

    def __init__(self, boot: str = "install") -> None:
        self.boot = boot
        self.qmp_dir: str | None = None
        self.qmp_link: Path | None = None  # the asked-for path, when it links to qmp_dir
        self.vm: driver.QemuProcess | None = None
        self.console: SerialConsole | None = None
        self.fw_dir: str | None = None
        if boot != "install":
            self.name = f"start QEMU ({boot})"

    def run(self, state: State) -> None:
        config = config_of(state)
        user_qmp = qmp_socket(config, state)
        if user_qmp is not None:
            user_qmp.unlink(missing_ok=True)
            qmp_path, self.qmp_dir = listen_path(user_qmp)
            if self.qmp_dir is not None:
                self.qmp_link = user_qmp
                state.ui.message(
                    f"QMP socket {user_qmp} is a link to {qmp_path} "
                    f"(a unix socket path must be shorter than {UNIX_PATH_MAX} bytes)"
                )
        else:  # a short private path: unix socket paths are limited to ~108 bytes
            self.qmp_dir = tempfile.mkdtemp(prefix="packwrap-qmp-")
            qmp_path = Path(self.qmp_dir) / "qmp.sock"
        drv = qemu.driver(state)
        choice = drv.choose_accelerator(config.accelerator, config.qemu_binary, config.cpu_model)
        screen = display.choose(config)
        if screen.note and not state.data.get("display_noted"):  # once per build
            state.ui.message(screen.note)
            state.data["display_noted"] = True
        if "vnc_password" not in state.data:  # one per build, as Packer's
            state.data["vnc_password"] = vnc.password(config)
        spec = build_spec(state, qmp_path, choice.accel, screen)
        if config.serial_console and config.bios_serial_console and _seabios(spec):
            if screen.windowless and not config.vga:
                # No screen anyway: QEMU's own switch (as -nographic sets it) makes SeaBIOS
                # mirror its console, and BIOS boot loaders, on the serial line.
                spec.machine = f"{spec.machine},graphics=off"
            else:  # a display was asked for: keep it, and the serial mirror too
                self.fw_dir = tempfile.mkdtemp(prefix="packwrap-fw-")
                spec.sercon_file = driver.write_sercon_file(Path(self.fw_dir))
        console_log, qemu_log = log_paths(state)
        if config.disk_image and config.communicator == "ssh":
            spec.no_reboot = False  # provisioned in this run: a reboot must not end it
        if self.boot == "disk":
            # The installed disk without the install media: the BIOS boots the disk, unless
            # provision_kernel names a kernel for disks that cannot boot by themselves.
            # No -no-reboot: a provisioner may reboot the guest; only a power-off ends QEMU.
            spec.iso_path = None
            spec.kernel = state.data.get("provision_kernel_path")
            spec.initrd = state.data.get("provision_initrd_path")
            spec.kernel_args = config.provision_kernel_args or ""
            spec.no_reboot = False
            console_log = console_log.with_name(
                console_log.name.replace(".console", ".disk.console")
            )
            qemu_log = qemu_log.with_name(qemu_log.name.replace(".qemu", ".disk.qemu"))
        argv = driver.qemu_argv(spec)
        if choice.reason:
            state.ui.message(f"accelerator auto: {spec.accel} ({choice.reason})")
        state.ui.say(f"Starting QEMU ({spec.accel}, {spec.machine}, {spec.memory.mib} MB)")
        state.ui.message(f"Command: {shlex.join(argv)}")
        # -on-error=abort leaves the VM running for inspection, so it must outlive us.
        keep = state.options.on_error == "abort"
        self.vm = vm = qemu.driver(state).start(argv, qmp_path, qemu_log, die_with_parent=not keep)
        state.data["qemu"] = vm
        state.data["qemu_pid"] = vm.pid
        state.data["qemu_accelerator"] = spec.accel
        state.data.setdefault("cleanup_hints", []).append(
            f"QEMU (pid {vm.pid}) may still be running: kill {vm.pid}"
        )
        state.ui.message(f"QEMU pid {vm.pid}; its messages go to {qemu_log}")
        if config.serial_console:
            from packwrap.sdk import SerialConsole

            pty = vm.serial_pty()
            self.console = SerialConsole(pty, console_log, ui=state.ui)
            self.console.exit_reason = vm.exit_summary
            state.data["console"] = self.console
            state.data["console_log"] = console_log
            state.ui.message(f"Serial console {pty}, logged to {console_log}")
        with vm.starting():
            vnc.configure(vm, config, state)
        vm.cont()

    def cleanup(self, state: State) -> None:
        if self.console is not None:
            if state.data.get("console") is self.console:
                del state.data["console"]
            self.console.close()
        if self.vm is not None:
            if self.vm.exit_code is None:
                state.ui.message(f"Stopping QEMU (pid {self.vm.pid})")
            self.vm.stop()
        for tmp in (self.qmp_dir, self.fw_dir):
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)
        if self.qmp_link is not None:
            self.qmp_link.unlink(missing_ok=True)  # it would dangle
