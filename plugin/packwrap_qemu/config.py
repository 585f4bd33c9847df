"""The qemu source's options: packer-plugin-qemu's (for disk images) plus packwrap's own.

Defaults follow packer-plugin-qemu (its builder/qemu/config.go) so a Packer template means the same
thing here. packwrap adds: `serial_console` (the guest's serial line on a pty, typed on and
logged), `hermetic_network` (the guest reaches only the builder's HTTP server), direct
kernel boot (`kernel`, `initrd`, `kernel_args`) and `no_reboot`.
Names that depend on the build name (vm_name, output_directory) stay None here and are
resolved by `names()` once the build name is known.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.sdk import (
    ANY,
    BOOL,
    INT,
    LIST,
    LIST_OF_LISTS,
    MAP,
    MIB,
    WHOLE_MIB,
    Check,
    Config,
    Option,
    Schema,
    Size,
    guest_network,
    parse_size,
)
from packwrap.sdk import common_options as common

if TYPE_CHECKING:
    from packwrap.sdk import State

FORMATS = ("qcow2", "raw")


def _parse_memory(value: object) -> Size:
    """A size, except that Packer reads a number below 10 (0 included) as "the default"."""
    try:
        tiny = int(str(value)) < 10 and not isinstance(value, bool)
    except ValueError:
        tiny = False
    return Size.of_mib(512) if tiny else parse_size(value)


DISK_INTERFACES = ("virtio", "virtio-scsi", "ide", "sata", "scsi", "sd")
ACCELERATORS = ("auto", "none", "kvm", "tcg", "hax", "hvf", "whpx", "xen")
DISK_CACHE = ("writeback", "writethrough", "none", "unsafe", "directsync")
DISK_DISCARD = ("unmap", "ignore")
DISK_DETECT_ZEROES = ("unmap", "on", "off")

# Building on an earlier image (Packer's disk_image): iso_url names a disk image, copied or
# used as a qcow2 backing file (layered images), then resized.
DISK_IMAGE_OPTIONS = [
    Option("disk_image", BOOL, default=False, help="iso_url is a disk image to build on"),
    Option("use_backing_file", BOOL, default=False, help="qcow2 overlay on iso_url's image"),
    Option("skip_resize_disk", BOOL, default=False, help="keep disk_image's size"),
    Option("disk_additional_size", LIST, default=[], help="more disks: <vm_name>-1, -2, ..."),
    Option("iso_skip_cache", BOOL, default=False, help="use iso_url in place, unchecked"),
]

# Media, network and devices that need something on the host (validate names the package).
HOST_DEVICE_OPTIONS = [
    Option("cd_content", MAP, default={}, help='{"path on the CD" = "content"}'),
    Option("floppy_files", LIST, default=[]),
    Option("floppy_dirs", LIST, default=[]),
    Option("floppy_content", MAP, default={}),
    Option("floppy_label", default="packer"),
    Option("net_bridge", help="bridge the NIC to this host bridge (qemu-bridge-helper)"),
    Option("vtpm", BOOL, default=False, help="an emulated TPM (swtpm)"),
    Option("use_tpm1", BOOL, default=False, help="TPM 1.2 instead of 2.0"),
    Option("tpm_device_type", help="default per arch: tpm-tis (x86), tpm-tis-device (arm64)"),
    # Packer reads run_once and does nothing with it ("TODO: deprecate"): nor does packwrap.
    Option("run_once", BOOL, ignored=True, help="no effect (Packer's qemu builder ignores it)"),
]

QEMU_OPTIONS = [
    Option("vm_name", help="disk file name (no extension added); default packer-<build name>"),
    Option("output_directory", help="where the disk goes; default output-<build name>"),
    Option("format", default="qcow2", choices=FORMATS),
    Option("disk_size", default="40960M", parse=parse_size, help="e.g. 40960M or 40G; bare = MiB"),
    Option("disk_compression", BOOL, default=False),
    Option("skip_compaction", BOOL, default=False),
    Option("disk_interface", default="virtio", choices=DISK_INTERFACES),
    Option("disk_cache", default="writeback", choices=DISK_CACHE),
    Option("disk_discard", default="ignore", choices=DISK_DISCARD),
    Option("disk_detect_zeroes", default="off", choices=DISK_DETECT_ZEROES),
    Option("accelerator", default="auto", choices=ACCELERATORS),
    Option("machine_type", help="default per arch: pc (x86), virt,acpi=off (arm64)"),
    Option(
        "cpu_model", help="default: host under KVM/HVF; under TCG max (x86), cortex-a57 (arm64)"
    ),
    Option("cpus", INT, default=1),
    Option("sockets", INT, default=0),
    Option("cores", INT, default=0),
    Option("threads", INT, default=0),
    Option("memory", default=512, parse=_parse_memory, help="-m, e.g. 1024 (MiB) or 1G"),
    Option("net_device", default="virtio-net"),
    Option(
        "headless",
        BOOL,
        default=False,
        help="false: a window (gtk, or display) where $DISPLAY/$WAYLAND_DISPLAY allow; "
        "else none, said once",
    ),
    Option("display", help="-display value (none: no window; default: see headless)"),
    Option("use_default_display", BOOL, default=False),
    Option("vga"),
    Option("firmware", help="-bios file (read-only pflash with use_pflash)"),
    Option("use_pflash", BOOL, default=False, help="firmware as a pflash drive, not -bios"),
    Option("efi_boot", BOOL, default=False, help="boot through UEFI (found on the host)"),
    Option("efi_firmware_code", help="UEFI code file (read-only pflash); implies efi_boot"),
    Option("efi_firmware_vars", help="UEFI vars template, copied per build; implies efi_boot"),
    Option("efi_drop_efivars", BOOL, default=False, help="leave efivars.fd out of the artifact"),
    Option("qemuargs", LIST_OF_LISTS, default=[]),
    Option("qemu_binary", default="qemu-system-x86_64"),
    Option("qemu_img_args", ANY, default={}, help="block/map: create, convert, resize arg lists"),
    Option("qmp_enable", BOOL, default=False),
    Option("qmp_socket_path"),
    Option("iso_url"),
    Option("iso_urls", LIST, default=[]),
    Option("iso_checksum", default=""),
    Option("iso_target_path"),
    Option(
        "iso_target_extension",
        default="iso",
        help="a remote iso_url is found at <iso_target_path dir>/<sha1>.<this> when "
        "iso_target_path has no extension (Packer's name)",
    ),
    Option("cdrom_interface", help="default per arch: ide (x86), virtio-scsi (arm64)"),
    Option("cd_files", LIST, default=[]),
    Option("cd_label", default="cidata"),
    Option("boot_steps", LIST_OF_LISTS, default=[]),
    Option("host_port_min", INT, default=2222, aliases=("ssh_host_port_min",)),
    Option("host_port_max", INT, default=4444, aliases=("ssh_host_port_max",)),
    Option("skip_nat_mapping", BOOL, default=False),
    *DISK_IMAGE_OPTIONS,
    *HOST_DEVICE_OPTIONS,
    # packwrap's own
    Option("serial_console", BOOL, default=True, help="guest serial on a pty, logged and typed on"),
    Option("hermetic_network", BOOL, default=False, help="guest reaches only the HTTP server"),
    Option(
        "bios_serial_console",
        BOOL,
        default=True,
        help="SeaBIOS text console (and BIOS boot loaders such as OpenBSD's) on the serial "
        "line; no effect with firmware set",
    ),
    Option("kernel", help="boot this kernel directly (-kernel), e.g. bsd.rd"),
    Option("initrd"),
    Option("kernel_args", default=""),
    Option("no_reboot", BOOL, default=True, help="-no-reboot: the installer's reboot ends QEMU"),
    # The provisioning boot (communicator = "ssh"): QEMU runs a second time on the installed
    # disk, without the ISO. By default the BIOS boots the disk, as a real OpenBSD disk boots;
    # these direct-kernel options are for disks that are not bootable by themselves (the
    # test fixture: provision_kernel = bsd.rd, provision_kernel_args with
    # pwfixture.mode=installed).
    Option("provision_kernel", help="provisioning boot: boot this kernel (-kernel), not the disk"),
    Option("provision_initrd", help="provisioning boot: -initrd (needs provision_kernel)"),
    Option("provision_kernel_args", default="", help="provisioning boot: -append"),
]

# Accepted without a warning but without effect (none today; README's "honoured" count
# leaves such options out).
SILENTLY_WITHOUT_EFFECT: tuple[str, ...] = ()

# Accepted and ignored by Packer's own qemu builder too (README counts them apart).
IGNORED_BY_PACKER_QEMU = ("run_once", *common.IGNORED_BY_PACKER_QEMU)

# Packer's VNC display (vnc.py): to watch the guest; packwrap types on the serial console.
VNC_OPTIONS = [
    Option(
        "disable_vnc",
        BOOL,
        default=False,
        help="no VNC server (the SDK's meaning; Packer's qemu opens one anyway and only "
        "skips typing over it: packwrap types on the serial console either way)",
    ),
    Option("vnc_bind_address", default="127.0.0.1"),
    Option("vnc_port_min", INT, default=5900, help="first port QEMU may take (>= 5900)"),
    Option("vnc_port_max", INT, default=6000, help="last port QEMU may take"),
    Option("vnc_use_password", BOOL, default=False, help="implies qmp_enable, as in Packer"),
    Option("vnc_password", help="at most 8 characters; default: random, printed"),
    # Not Packer qemu's (VMware's name): packwrap types on the serial line, not over VNC.
    Option(
        "boot_key_interval_vnc",
        ignored=True,
        help="no effect: packwrap types on the serial console (boot_key_interval)",
    ),
]


def _check_vnc(config: Config, problem: Callable[[str, str | None], None]) -> None:
    """Packer's VNC rules (builder/qemu/config.go, step_configure_vnc.go)."""
    if config.vnc_port_min < 5900:
        problem("vnc_port_min cannot be below 5900", "vnc_port_min")
    if config.vnc_port_min > 65535 or config.vnc_port_max > 65535:
        problem("vnc_port_min and vnc_port_max must both be TCP ports (at most 65535)", None)
    if config.vnc_port_min > config.vnc_port_max:
        problem("vnc_port_min must be less than vnc_port_max", "vnc_port_min")
    if not re.fullmatch(r"[0-9A-Za-z.:-]+", config.vnc_bind_address):
        # it becomes part of QEMU's -vnc option string: an address, nothing more
        problem(f"vnc_bind_address {config.vnc_bind_address!r}: not an address", None)
    if config.vnc_use_password:
        config["qmp_enable"] = True  # Packer's rule: the socket at <output>/<vm>.monitor
    if config.vnc_password and len(config.vnc_password) > 8:
        problem(f"vnc_password is longer than 8 characters ({len(config.vnc_password)})", None)


def is_remote(url: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*://", url, re.I)) and not url.startswith("file://")


def _check(config: Config, problem: Callable[[str, str | None], None]) -> None:
    if config.iso_url and config.iso_urls:
        problem("set only one of iso_url and iso_urls", "iso_urls")
    isos = [config.iso_url] if config.iso_url else list(config.iso_urls)
    if not isos and not config.kernel:
        problem("one of iso_url, iso_urls or kernel is required", None)
    for url in isos:
        if is_remote(url) and not config.iso_target_path and not config.iso_skip_cache:
            problem(
                f"iso_url {url!r} is remote: packwrap builds from local media; run "
                "`packwrap fetch-iso` and set iso_target_path (or iso_url) to the downloaded file",
                "iso_url" if config.iso_url else "iso_urls",
            )
    if isos and not config.iso_checksum and not config.iso_skip_cache:
        problem('iso_checksum is required with iso_url (use "none" to skip the check)', None)
    if config.initrd and not config.kernel:
        problem("initrd needs kernel", "initrd")
    if config.kernel_args and not config.kernel:
        problem("kernel_args needs kernel", "kernel_args")
    if config.provision_initrd and not config.provision_kernel:
        problem("provision_initrd needs provision_kernel", "provision_initrd")
    if config.provision_kernel_args and not config.provision_kernel:
        problem("provision_kernel_args needs provision_kernel", "provision_kernel_args")
    if not config.serial_console and config.get("boot_command"):
        problem(
            "boot_command is typed on the serial console: it needs serial_console = true",
            "serial_console",
        )
    _check_qemu_img_args(config, problem)
    if config.format == "raw" and config.disk_compression:
        problem('disk_compression needs format = "qcow2"', "disk_compression")
    _check_machine(config, problem)
    _check_disk_image(config, problem)
    from packwrap_qemu.host_tools import check_host_tools

    check_host_tools(config, problem)
    if config.host_port_min > config.host_port_max:
        problem("host_port_min must be <= host_port_max", "host_port_min")
    _check_vnc(config, problem)
    for i, arg in enumerate(config.qemuargs):
        if not arg or not arg[0].startswith("-"):
            problem(f'qemuargs[{i}]: each entry is ["-switch", "value"...]', "qemuargs")


def _check_machine(config: Config, problem: Callable[[str, str | None], None]) -> None:
    """Memory, CPUs and firmware."""
    if config.memory.bytes < 10 * MIB:
        config["memory"] = Size.of_mib(512)  # Packer's rule: tiny values mean "default"
    elif not config.memory.whole_mib:
        problem(f"memory {str(config.memory)!r}: {WHOLE_MIB}", "memory")
    if config.firmware and (
        config.efi_boot or config.efi_firmware_code or config.efi_firmware_vars
    ):
        problem("firmware (-bios) and efi_boot are mutually exclusive", "firmware")
    if config.use_pflash and not config.firmware:
        problem("use_pflash needs firmware", "use_pflash")
    if config.cpus < 1:
        problem("cpus must be at least 1", "cpus")


def _check_disk_image(config: Config, problem: Callable[[str, str | None], None]) -> None:
    """Packer's rules for disk_image, use_backing_file, skip_resize_disk and extra disks."""
    if config.format != "qcow2":
        config["skip_compaction"] = True  # Packer: only qcow2 is compacted
    if config.use_backing_file:
        config["skip_compaction"] = True  # converting would flatten the overlay
        # packwrap also layers a build over its cached install (issue 17): the artifact
        # then keeps the cache entry as its backing file instead of being flattened.
        if config.format != "qcow2" or not (config.disk_image or config.install_cache):
            problem(
                "use_backing_file can only be enabled for QCOW2 images and when disk_image "
                "is true (or, in packwrap, over a cached install: install_cache = true)",
                "use_backing_file",
            )
    if config.skip_resize_disk and not config.disk_image:
        problem("skip_resize_disk can only be used when disk_image is true", "skip_resize_disk")
    sizes = []
    for raw in config.disk_additional_size:
        try:
            sizes.append(parse_size(raw))
        except ValueError as exc:
            problem(f"disk_additional_size {raw!r}: {exc}", "disk_additional_size")
    config["disk_additional_size"] = sizes
    if config.iso_skip_cache:
        config["iso_checksum"] = "none"  # Packer: the medium is used in place, unchecked


def _check_qemu_img_args(config: Config, problem: Callable[[str, str | None], None]) -> None:
    """Packer's `qemu_img_args { create = [...] convert = [...] resize = [...] }` block (HCL
    gives a one-element list of maps) or a JSON map: normalised to {name: [str, ...]}."""
    raw = config.qemu_img_args or {}
    if isinstance(raw, list) and len(raw) == 1:
        raw = raw[0]
    if not isinstance(raw, dict) or set(raw) - {"create", "convert", "resize"}:
        problem(
            "qemu_img_args: expected a block with create, convert and/or resize lists",
            "qemu_img_args",
        )
        return
    config["qemu_img_args"] = {
        k: [str(a) for a in (v if isinstance(v, list) else [v])] for k, v in raw.items()
    }


def _check_boot_steps(config: Config, problem: Callable[[str, str | None], None]) -> None:
    """boot_steps ([[keys, description], ...]) is Packer's other spelling of boot_command:
    it becomes the boot_command (before the common checks validate that)."""
    if not config.boot_steps:
        return
    if config.get("boot_command"):
        problem("boot_command and boot_steps are mutually exclusive", "boot_steps")
        return
    for i, step in enumerate(config.boot_steps):
        if not 1 <= len(step) <= 2:
            problem(f"boot_steps[{i}]: expected [command] or [command, description]", "boot_steps")
    config["boot_command"] = [step[0] for step in config.boot_steps if step]


def _common_options() -> tuple[list[Option], list[Check]]:
    options: list[Option] = []
    checks: list[Check] = []
    for name in ("HTTP", "BOOT", "SHUTDOWN", "COMM", "CACHE"):
        options += list(getattr(common, f"{name}_OPTIONS", []))
        checks += list(getattr(common, f"{name}_CHECKS", []))
    checks += list(getattr(common, "CHECKS", []))
    return options, checks


def _check_user_network(config: Config, problem: Callable[[str, str | None], None]) -> None:
    """A static guest address: its subnet must hold QEMU's user network too (usernet.py)."""
    from packwrap_qemu import usernet

    try:
        static = guest_network.static_ipv4_of(config)
    except ValueError:
        return  # guest_network.check reported it
    try:
        usernet.plan(static)
    except ValueError as exc:
        problem(f"guest_ipv4 {exc}", "guest_ipv4")


class QemuConfig(common.CommonConfig):
    """The prepared qemu options, typed (see QEMU_OPTIONS for defaults and meaning)."""

    vm_name: str | None
    output_directory: str | None
    format: str
    disk_size: Size
    disk_compression: bool
    skip_compaction: bool
    disk_interface: str
    disk_cache: str
    disk_discard: str
    disk_detect_zeroes: str
    accelerator: str
    machine_type: str | None  # None: the arch's default (machine.py)
    cpu_model: str | None
    cpus: int
    sockets: int
    cores: int
    threads: int
    memory: Size
    net_device: str
    headless: bool
    display: str | None
    use_default_display: bool
    vga: str | None
    firmware: str | None
    use_pflash: bool
    efi_boot: bool
    efi_firmware_code: str | None
    efi_firmware_vars: str | None
    efi_drop_efivars: bool
    qemuargs: list[list[str]]
    qemu_binary: str
    qemu_img_args: dict[str, list[str]]  # normalised by _check_qemu_img_args
    qmp_enable: bool
    qmp_socket_path: str | None
    iso_url: str | None
    iso_urls: list[str]
    iso_checksum: str
    iso_target_path: str | None
    iso_target_extension: str
    cdrom_interface: str | None  # None: the arch's default (machine.py)
    cd_files: list[str]
    cd_label: str
    boot_steps: list[list[str]]
    host_port_min: int
    host_port_max: int
    skip_nat_mapping: bool
    disk_image: bool
    use_backing_file: bool
    skip_resize_disk: bool
    disk_additional_size: list[Size]  # parsed by _check_disk_image
    iso_skip_cache: bool
    cd_content: dict[str, str]
    floppy_files: list[str]
    floppy_dirs: list[str]
    floppy_content: dict[str, str]
    floppy_label: str
    net_bridge: str | None
    vtpm: bool
    use_tpm1: bool
    tpm_device_type: str | None  # None: the arch's default (machine.py)
    run_once: bool | None
    serial_console: bool
    hermetic_network: bool
    guest_ipv4: str | None
    guest_ipv4_netmask: str | None
    guest_ipv4_route: str | None
    bios_serial_console: bool
    kernel: str | None
    initrd: str | None
    kernel_args: str
    no_reboot: bool
    provision_kernel: str | None
    provision_initrd: str | None
    provision_kernel_args: str
    disable_vnc: bool
    vnc_bind_address: str
    vnc_port_min: int
    vnc_port_max: int
    vnc_use_password: bool
    vnc_password: str | None
    boot_key_interval_vnc: str | None  # accepted, no effect


def _schema() -> Schema[QemuConfig]:
    options, checks = _common_options()
    checks = [_check_boot_steps, *checks, _check, *guest_network.CHECKS, _check_user_network]
    options += guest_network.OPTIONS
    return Schema([*options, *QEMU_OPTIONS, *VNC_OPTIONS], checks, QemuConfig)


SCHEMA = _schema()


def names(config: Config, build_name: str) -> tuple[str, Path]:
    """(vm_name, output_directory) with Packer's defaults for this build name."""
    vm_name = config.vm_name or f"packer-{build_name}"
    out = Path(config.output_directory or f"output-{build_name}")
    return vm_name, out


def config_of(state: State) -> QemuConfig:
    """The build's QemuConfig (the session prepared it with SCHEMA): the core's one
    config_of (packwrap/build/state.py), bound to this builder's type."""
    from packwrap.sdk import config_of as typed_config_of

    return typed_config_of(state, QemuConfig)
