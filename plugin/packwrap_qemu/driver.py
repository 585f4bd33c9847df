"""The only place that runs qemu-img and qemu-system-*, or speaks QMP.

Everything is an argument list (never a shell string). `qemu_argv` is a pure function of a
`QemuSpec`, so the command line is unit-tested without starting anything.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packwrap.sdk import PackwrapError, Size
from packwrap_qemu import usernet

if TYPE_CHECKING:
    from packwrap_qemu.accel import Choice

#: The guest-visible address of the builder's HTTP server in hermetic mode (DHCP guest;
#: a static guest address moves it into the guest's subnet, usernet.py).
HERMETIC_HTTP_IP = usernet.DEFAULT.http_ip
HERMETIC_HTTP_PORT = 80
#: QEMU's user-mode host address (Packer's {{ .HTTPIP }} for qemu).
USERNET_HOST_IP = usernet.DEFAULT.host


# --------------------------------------------------------------------------- qemu-img


def qemu_img(args: Sequence[str], *, what: str) -> str:
    """Run qemu-img; a failure is a one-line PackwrapError with qemu-img's own message."""
    if shutil.which("qemu-img") is None:
        raise PackwrapError("qemu-img not found; install qemu-utils")
    proc = subprocess.run(["qemu-img", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise PackwrapError(f"{what} failed: {msg[-1] if msg else f'exit {proc.returncode}'}")
    return proc.stdout


def _file_arg(path: Path) -> str:
    """A path as a command-line operand: a relative "-x" would be read as an option."""
    text = str(path)
    return f"./{text}" if text.startswith("-") else text


def qemu_img_size(size: Size) -> str:
    """qemu-img's size operand: MiB when whole (as Packer passes `40960M`), else bytes."""
    return f"{size.mib}M" if size.whole_mib else str(size.bytes)


def create_disk(path: Path, fmt: str, size: Size, extra: Sequence[str] = ()) -> None:
    args = ["create", "-q", "-f", fmt, *extra, _file_arg(path), qemu_img_size(size)]
    qemu_img(args, what="qemu-img create")


def convert_disk(
    src: Path, dst: Path, fmt: str, *, compress: bool, extra: Sequence[str] = ()
) -> None:
    compress_args = ["-c"] if compress else []
    args = ["convert", "-q", "-O", fmt, *compress_args, *extra, _file_arg(src), _file_arg(dst)]
    qemu_img(args, what="qemu-img convert")


def write_content(directory: Path, content: Mapping[str, str], *, what: str) -> None:
    """Packer's cd_content / floppy_content: {"path/in/medium": "text"} under `directory`."""
    root = directory.resolve()
    for name, text in content.items():
        target = (root / name.lstrip("/")).resolve()
        if root not in target.parents:
            raise PackwrapError(f"{what}: {name!r} is outside the medium")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def make_cd(
    iso: Path, files: Sequence[Path], label: str, content: Mapping[str, str] | None = None
) -> None:
    """An ISO9660 image holding `files` and `content` (Packer's cd_files, cd_content), made
    with xorriso; a directory's contents land at the CD's root, as with mkisofs."""
    if shutil.which("xorriso") is None:
        raise PackwrapError("cd_files needs xorriso; install it (apt-get install xorriso)")
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise PackwrapError(f"cd_files: {missing[0]} not found")
    sources = [str(f) for f in files]
    if content:
        staged = iso.parent / "cd_content"
        write_content(staged, content, what="cd_content")
        sources.append(str(staged))
    argv = ["xorriso", "-as", "mkisofs", "-quiet", "-o", str(iso), "-V", label, "-J", "-r"]
    proc = subprocess.run([*argv, *sources], capture_output=True, text=True)
    if proc.returncode != 0:
        raise PackwrapError(f"xorriso failed: {proc.stderr.strip().splitlines()[-1:]}")


def _mtools(argv: list[str]) -> None:
    if shutil.which(argv[0]) is None:
        raise PackwrapError(f"floppy_* needs {argv[0]}; install mtools")
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise PackwrapError(f"{argv[0]} failed: {msg[-1] if msg else proc.returncode}")


def make_floppy(
    image: Path,
    files: Sequence[Path],
    dirs: Sequence[Path],
    content: Mapping[str, str],
    label: str,
) -> None:
    """A 1.44 MB FAT floppy (Packer's floppy_files, floppy_dirs, floppy_content) with
    mtools: files at the root, each directory under its own name, content last (it wins
    over a file of the same name, as in Packer)."""
    _mtools(["mformat", "-i", str(image), "-C", "-f", "1440", "-v", label[:11], "::"])
    sources = [*files, *dirs]
    if content:
        staged = image.parent / "floppy_content"
        write_content(staged, content, what="floppy_content")
        sources += sorted(staged.iterdir())
    for src in sources:
        if not src.exists():
            raise PackwrapError(f"floppy_files: {src} not found")
        _mtools(["mcopy", "-i", str(image), "-s", "-o", "-Q", _file_arg(src), "::/"])


def _image_arg(image: Path | str) -> str:
    """A disk_image operand: a local file (absolute, so an overlay finds it from anywhere)
    or a URL qemu-img reads itself (iso_skip_cache)."""
    return image if isinstance(image, str) else str(image.resolve())


def backing_format(base: Path | str) -> str:
    """The format of a backing file (qemu-img info), for `create -F`."""
    info = qemu_img(["info", "--output=json", _image_arg(base)], what="qemu-img info")
    return str(json.loads(info).get("format") or "raw")


def create_overlay(path: Path, base: Path | str, size: Size, extra: Sequence[str] = ()) -> None:
    """A qcow2 that reads unchanged blocks from `base` (Packer's use_backing_file)."""
    args = ["create", "-q", "-f", "qcow2", "-b", _image_arg(base), "-F", backing_format(base)]
    qemu_img([*args, *extra, _file_arg(path), qemu_img_size(size)], what="qemu-img create")


def copy_image(src: Path | str, dst: Path, fmt: str, extra: Sequence[str] = ()) -> None:
    """disk_image without a backing file: the base converted (or copied) to `fmt`."""
    if isinstance(src, Path) and src.suffix.lstrip(".") == fmt and not extra:
        shutil.copyfile(src, dst)  # Packer: same format by extension, a plain copy
        return
    qemu_img(
        ["convert", "-q", *extra, "-O", fmt, _image_arg(src), _file_arg(dst)],
        what="qemu-img convert",
    )


def resize_disk(path: Path, fmt: str, size: Size, extra: Sequence[str] = ()) -> None:
    args = ["resize", "-q", "-f", fmt, *extra, _file_arg(path), qemu_img_size(size)]
    qemu_img(args, what="qemu-img resize")


def disk_info(path: Path) -> dict[str, Any]:
    return json.loads(qemu_img(["info", "--output=json", _file_arg(path)], what="qemu-img info"))


# --------------------------------------------------------------------------- command line


@dataclass
class QemuSpec:
    """Everything the QEMU command line depends on, resolved (no template, no defaults)."""

    binary: str
    machine: str
    accel: str
    cpu: str
    memory: Size
    cpus: int
    disk_path: Path
    disk_format: str
    qmp_path: Path
    disk_interface: str = "virtio"
    disk_cache: str = "writeback"
    disk_discard: str = "ignore"
    disk_detect_zeroes: str = "off"
    sockets: int = 0
    cores: int = 0
    threads: int = 0
    iso_path: Path | str | None = None  # a str: a URL QEMU reads itself (iso_skip_cache)
    extra_disks: list[Path] = field(default_factory=list)  # disk_additional_size
    floppy_path: Path | None = None
    tpm_socket: Path | None = None  # swtpm's control socket (vtpm)
    tpm_device: str = "tpm-tis"
    net_bridge: str | None = None
    cdrom_interface: str = "ide"
    cd_path: Path | None = None
    kernel: Path | None = None
    initrd: Path | None = None
    kernel_args: str = ""
    serial_console: bool = True
    display: str | None = "none"
    vnc: str | None = None  # -vnc's value (vnc.py); None: no VNC server
    vga: str | None = None
    firmware: str | None = None
    use_pflash: bool = False  # firmware as read-only pflash instead of -bios
    efi_code: Path | None = None  # UEFI: read-only pflash unit 0
    efi_vars: Path | None = None  # UEFI: the build's writable vars copy, pflash unit 1
    iso_kind: str = "cdrom"  # "disk": an installXY.img / minirootXY.img medium
    boot_order: bool = True  # False where the machine refuses -boot (arm virt)
    net_device: str = "virtio-net"
    hermetic: bool = False
    user_net: usernet.UserNet = usernet.DEFAULT  # the user network's addresses
    http_port: int | None = None  # the builder's server on 127.0.0.1 (hermetic guestfwd)
    fwd_command: str = ""  # "busybox nc 127.0.0.1" style prefix; the port is appended
    ssh_host_port: int | None = None  # hostfwd 127.0.0.1:<port> -> guest :22
    ssh_guest_port: int = 22
    mac_address: str | None = None  # the NIC's, when set (net_bridge: found by it in ARP)
    no_reboot: bool = True
    sercon_file: Path | None = None  # SeaBIOS serial console (see write_sercon_file)
    user_args: list[list[str]] = field(default_factory=list)  # qemuargs, already rendered


_NET_MODELS = {"virtio-net": "virtio-net-pci"}


def _netdev(spec: QemuSpec) -> str:
    if spec.net_bridge:
        return f"bridge,id=n0,br={_opt(spec.net_bridge)}"
    parts = ["user", "id=n0", *spec.user_net.options()]
    if spec.hermetic:
        if spec.http_port:
            cmd = f"{spec.fwd_command} {spec.http_port}"
            if "," in cmd:
                raise PackwrapError(f"guestfwd command {cmd!r} must not contain a comma")
            parts.append("restrict=on")
            http_ip = spec.user_net.http_ip
            parts.append(f"guestfwd=tcp:{http_ip}:{HERMETIC_HTTP_PORT}-cmd:{cmd}")
        else:
            parts.append("restrict=on")
    if spec.ssh_host_port:
        parts.append(f"hostfwd=tcp:127.0.0.1:{spec.ssh_host_port}-:{spec.ssh_guest_port}")
    return ",".join(parts)


def _opt(value: object) -> str:
    """A value inside QEMU's `key=value,...` syntax: a comma is written as ",,"."""
    return str(value).replace(",", ",,")


def _disk_args(spec: QemuSpec) -> list[tuple[str, str]]:
    """The disk and the disk_additional_size disks (d0, d1, ...), all on disk_interface."""
    args: list[tuple[str, str]] = []
    iface = spec.disk_interface
    if iface == "virtio-scsi":
        args.append(("-device", "virtio-scsi-pci,id=scsi0"))
    elif iface == "sata":
        args.append(("-device", "ahci,id=ahci0"))
    for i, path in enumerate([spec.disk_path, *spec.extra_disks]):
        opts = (
            f"file={_opt(path)},format={spec.disk_format},cache={spec.disk_cache},"
            f"discard={spec.disk_discard},detect-zeroes={spec.disk_detect_zeroes}"
        )
        if iface == "virtio":
            args += [
                ("-drive", f"{opts},if=none,id=d{i}"),
                ("-device", f"virtio-blk-pci,drive=d{i}"),
            ]
        elif iface == "virtio-scsi":
            args += [
                ("-drive", f"{opts},if=none,id=d{i}"),
                ("-device", f"scsi-hd,bus=scsi0.0,drive=d{i}"),
            ]
        elif iface == "sata":
            args += [
                ("-drive", f"{opts},if=none,id=d{i}"),
                ("-device", f"ide-hd,bus=ahci0.{i},drive=d{i}"),
            ]
        else:  # ide index 2 and 3 are the install media: extra disks skip them
            index = i if iface != "ide" or i < 2 else i + 2
            args.append(("-drive", f"{opts},if={iface},index={index}"))
    return args


def _device_args(spec: QemuSpec) -> list[tuple[str, str]]:
    """Packer's floppy (-fda) and vTPM (swtpm's socket as a TPM emulator device)."""
    args: list[tuple[str, str]] = []
    if spec.floppy_path:
        args.append(("-fda", str(spec.floppy_path)))
    if spec.tpm_socket:
        args += [
            ("-chardev", f"socket,id=vtpm,path={_opt(spec.tpm_socket)}"),
            ("-tpmdev", "emulator,id=tpm0,chardev=vtpm"),
            ("-device", f"{spec.tpm_device},tpmdev=tpm0"),
        ]
    return args


def _firmware_args(spec: QemuSpec) -> list[tuple[str, str | None]]:
    if spec.efi_code and spec.efi_vars:
        return [
            ("-drive", f"file={_opt(spec.efi_code)},if=pflash,unit=0,format=raw,readonly=on"),
            ("-drive", f"file={_opt(spec.efi_vars)},if=pflash,unit=1,format=raw"),
        ]
    if spec.firmware and spec.use_pflash:
        return [("-drive", f"file={_opt(spec.firmware)},if=pflash,unit=0,format=raw,readonly=on")]
    if spec.firmware:
        return [("-bios", spec.firmware)]
    return []


#: cdrom_interface values attached as a device on their own controller (-boot cannot
#: name them; a bootindex makes the firmware boot them first).
_DEVICE_CDROMS = ("virtio-scsi", "virtio")


def _boots_by_order(spec: QemuSpec) -> bool:
    return spec.iso_kind == "cdrom" and spec.cdrom_interface not in _DEVICE_CDROMS


def _medium_args(
    path: Path | str, kind: str, interface: str, index: int, *, boot: bool
) -> list[tuple[str, str]]:
    """An install medium: a CD on `interface`, or an .img as one more virtio disk. QEMU
    never writes to it (a disk medium takes writes in a snapshot, as the installer may
    mount it)."""
    drive_id = f"m{index}"
    bootindex = ",bootindex=0" if boot else ""
    if kind == "disk":
        return [
            ("-drive", f"file={_opt(path)},if=none,id={drive_id},format=raw,snapshot=on"),
            ("-device", f"virtio-blk-pci,drive={drive_id}{bootindex}"),
        ]
    if interface in _DEVICE_CDROMS:
        ctrl = f"scsi{index}"
        return [
            ("-drive", f"file={_opt(path)},if=none,id={drive_id},media=cdrom,readonly=on"),
            ("-device", f"virtio-scsi-pci,id={ctrl}"),
            ("-device", f"scsi-cd,bus={ctrl}.0,drive={drive_id}{bootindex}"),
        ]
    opts = f"media=cdrom,if={interface},index={index},readonly=on"
    return [("-drive", f"file={_opt(path)},{opts}")]


def default_args(spec: QemuSpec) -> list[tuple[str, str | None]]:
    """QEMU's switches as (switch, value) pairs; user qemuargs may replace them by switch."""
    args: list[tuple[str, str | None]] = [
        ("-machine", spec.machine),
        ("-accel", spec.accel),
        ("-cpu", spec.cpu),
        ("-m", f"{spec.memory.mib}M"),  # the schema allows whole MiB only
    ]
    smp = [f"cpus={spec.cpus}"] + [
        f"{k}={v}"
        for k, v in (("sockets", spec.sockets), ("cores", spec.cores), ("threads", spec.threads))
        if v
    ]
    args.append(("-smp", ",".join(smp)))
    if spec.display is not None:
        args.append(("-display", spec.display))
    if spec.vnc:
        args.append(("-vnc", spec.vnc))
    if spec.vga:
        args.append(("-vga", spec.vga))
    args += _firmware_args(spec)
    args += _disk_args(spec)
    if spec.iso_path:
        args += _medium_args(spec.iso_path, spec.iso_kind, spec.cdrom_interface, 2, boot=True)
    if spec.cd_path:
        args += _medium_args(spec.cd_path, "cdrom", spec.cdrom_interface, 3, boot=False)
    args += _device_args(spec)
    if spec.iso_path and not spec.kernel and spec.boot_order and _boots_by_order(spec):
        args.append(("-boot", "once=d"))
    if spec.kernel:
        args.append(("-kernel", str(spec.kernel)))
        if spec.initrd:
            args.append(("-initrd", str(spec.initrd)))
        if spec.kernel_args:
            args.append(("-append", spec.kernel_args))
    args.append(("-netdev", _netdev(spec)))
    model = _NET_MODELS.get(spec.net_device, spec.net_device)
    mac = f",mac={_opt(spec.mac_address)}" if spec.mac_address else ""
    args.append(("-device", f"{model},netdev=n0{mac},romfile="))
    return args


def control_args(spec: QemuSpec) -> list[str]:
    """Switches packwrap needs to drive QEMU; qemuargs never replace these."""
    argv = ["-nodefaults", "-no-user-config", "-S"]
    if spec.no_reboot:
        argv.append("-no-reboot")
    argv += ["-qmp", f"unix:{_opt(spec.qmp_path)},server=on,wait=off"]
    if spec.serial_console:
        argv += ["-chardev", "pty,id=ser0", "-serial", "chardev:ser0"]
        if spec.sercon_file:
            argv += ["-fw_cfg", f"name=etc/sercon-port,file={spec.sercon_file}"]
    return argv


def write_sercon_file(directory: Path, port: int = 0x3F8) -> Path:
    """The fw_cfg file that makes SeaBIOS mirror its text console (int 10h) and read its
    keyboard (int 16h) on the serial port at `port` (COM1). Boot loaders that talk
    through the BIOS, like OpenBSD's cdboot/biosboot on pc0, then show `boot>` on the
    serial console and read what packwrap types there, as sgabios does under vmd.
    SeaBIOS reads the value as a little-endian integer file of 2 bytes."""
    path = directory / "sercon-port"
    path.write_bytes(port.to_bytes(2, "little"))
    return path


def qemu_argv(spec: QemuSpec) -> list[str]:
    """The full command line. Like Packer, a switch given in qemuargs drops every default
    pair with that switch (e.g. one `-device` replaces all default devices)."""
    overridden = {arg[0] for arg in spec.user_args}
    argv = [spec.binary]
    for switch, value in default_args(spec):
        if switch not in overridden:
            argv += [switch] if value is None else [switch, value]
    for arg in spec.user_args:
        argv += arg
    argv += control_args(spec)
    return argv


def guestfwd_command() -> str:
    """The command QEMU runs per guest connection to 10.0.2.100:80 (it appends the port).

    busybox nc is one small process per connection; without busybox a Python helper does
    the same. QEMU splits guestfwd options on commas, so the command must have none."""
    if shutil.which("busybox"):
        return "busybox nc 127.0.0.1"
    return f"{sys.executable} -m packwrap_qemu.fwd"


# --------------------------------------------------------------------------- QMP


class Qmp:
    """A QMP client on a unix socket: commands in order, events collected by a reader thread."""

    def __init__(
        self, path: Path, timeout: float = 10.0, alive: Callable[[], bool] = lambda: True
    ) -> None:
        deadline = time.monotonic() + timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        while True:
            try:
                self.sock.connect(str(path))
                break
            except OSError as exc:
                if time.monotonic() > deadline or not alive():
                    self.sock.close()
                    raise PackwrapError(f"cannot connect to QEMU's QMP socket: {exc}") from None
                time.sleep(0.02)
        self._file = self.sock.makefile("rb")
        self.events: list[dict[str, Any]] = []
        self.event_seen = threading.Event()
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._lock = threading.Lock()
        try:
            greeting = self._file.readline()
        except OSError:  # ECONNRESET: QEMU exited between accept and greeting
            greeting = b""
        if not greeting:
            raise PackwrapError("QEMU closed its QMP socket before greeting")
        self._reader = threading.Thread(target=self._read, name="qmp-reader", daemon=True)
        self._reader.start()
        self.execute("qmp_capabilities")

    def _read(self) -> None:
        try:
            for line in self._file:
                msg = json.loads(line)
                if "event" in msg:
                    self.events.append(msg)
                    self.event_seen.set()
                else:
                    self._replies.put(msg)
        except (OSError, ValueError):
            pass
        self._replies.put(None)  # EOF: QEMU is gone

    @property
    def closed(self) -> bool:
        return not self._reader.is_alive()

    def wait_closed(self, timeout: float) -> None:
        """Wait until QEMU closed the connection (all its events are read)."""
        self._reader.join(timeout)

    def execute(self, command: str, timeout: float = 10.0, **arguments: Any) -> Any:
        msg: dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        with self._lock:
            try:
                self.sock.sendall(json.dumps(msg).encode() + b"\n")
                reply = self._replies.get(timeout=timeout)
            except (OSError, queue.Empty) as exc:
                raise PackwrapError(f"QMP {command} failed: {exc or 'no reply'}") from None
        if reply is None:
            raise PackwrapError(f"QMP {command}: QEMU closed the connection")
        if "error" in reply:
            raise PackwrapError(f"QMP {command}: {reply['error'].get('desc', reply['error'])}")
        return reply.get("return")

    def shutdown_reasons(self) -> list[str]:
        shutdowns = [e for e in self.events if e["event"] == "SHUTDOWN"]
        return [e.get("data", {}).get("reason", "") for e in shutdowns]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()
        self._reader.join(timeout=2)


# --------------------------------------------------------------------------- the VM process


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    # Linux: QEMU gets SIGTERM if packwrap dies without cleaning up (e.g. SIGKILL). The
    # signal fires when the *thread* that started QEMU ends, so a build must start and
    # stop its VM from the same thread (the runner runs a build's steps in one thread).
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


_LINUX = sys.platform.startswith("linux")


class QemuProcess:
    """A QEMU started paused (-S) with QMP; `cont` lets it run once the console is open."""

    def __init__(
        self, argv: list[str], qmp_path: Path, stderr_log: Path, *, die_with_parent: bool = True
    ):
        binary = argv[0]
        if shutil.which(binary) is None:
            raise PackwrapError(f"{binary} not found; install QEMU (e.g. qemu-system-x86)")
        self.argv = argv
        self.stderr_log = stderr_log
        with open(stderr_log, "wb") as err:
            # Own session: a terminal's Ctrl-C reaches packwrap, which stops QEMU in cleanup.
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
                preexec_fn=_die_with_parent if die_with_parent and _LINUX else None,
            )
        self.pid = self.proc.pid
        with self.starting():
            self.qmp = Qmp(qmp_path, alive=lambda: self.proc.poll() is None)

    @contextlib.contextmanager
    def starting(self) -> Iterator[None]:
        """Until the guest runs, a failure is QEMU refusing its command line: report
        QEMU's own last stderr lines (it may exit just after accepting QMP)."""
        try:
            yield
        except (PackwrapError, OSError) as exc:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(1)  # a QEMU that refused its options exits at once
            exited = self.proc.poll() is not None
            self.stop()
            if exited:
                raise PackwrapError(f"QEMU failed to start: {self.stderr_tail()}") from None
            raise PackwrapError(f"QEMU failed to start: {exc}") from None

    def stderr_tail(self, n: int = 3) -> str:
        try:
            lines = self.stderr_log.read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        lines = [ln for ln in lines if not ln.startswith("char device redirected")]
        return " | ".join(lines[-n:]) or f"exit status {self.proc.poll()}"

    def exit_summary(self) -> str | None:
        """None while QEMU runs; else its exit status and last stderr lines."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(0.5)  # the console closes a moment before the process ends
        rc = self.proc.poll()
        if rc is None:
            return None
        tail = self.stderr_tail()
        quoted = "" if tail.startswith("exit status") else f": {tail}"
        return f"QEMU exited with status {rc}{quoted}"

    def serial_pty(self, label: str = "ser0") -> str:
        with self.starting():
            devices = self.qmp.execute("query-chardev")
        for dev in devices:
            if dev.get("label") == label and dev.get("filename", "").startswith("pty:"):
                return dev["filename"][4:]
        raise PackwrapError(f"QEMU reported no pty for chardev {label!r}")

    def cont(self) -> None:
        try:
            with self.starting():
                self.qmp.execute("cont")
        except PackwrapError:
            self.qmp.wait_closed(timeout=1)
            if any(e.get("event") == "RESUME" for e in self.qmp.events):
                return  # the guest ran and QEMU exited before the reply: not a start failure
            raise

    @property
    def exit_code(self) -> int | None:
        return self.proc.poll()

    def shutdown_reason(self) -> str | None:
        """The last SHUTDOWN event's reason (guest-shutdown, guest-reset, host-signal...)."""
        if self.proc.poll() is not None:
            self.qmp.wait_closed(timeout=1)  # let the last events arrive
        reasons = self.qmp.shutdown_reasons()
        return reasons[-1] if reasons else None

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; always reaps the process."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait()
        if getattr(self, "qmp", None) is not None:
            self.qmp.close()


# --------------------------------------------------------------------------- the driver


class Driver:
    """What the qemu steps run on the host, as packer-plugin-qemu's Driver: qemu-img,
    xorriso and qemu-system-*. The steps get the build's one instance from
    `packwrap_qemu.qemu.driver(state)` (as the vmm steps do), so a test can hand them
    another; the functions above stay the pure, separately tested building blocks."""

    def create_disk(self, path: Path, fmt: str, size: Size, extra: Sequence[str] = ()) -> None:
        create_disk(path, fmt, size, extra)

    def convert_disk(
        self, src: Path, dst: Path, fmt: str, *, compress: bool, extra: Sequence[str] = ()
    ) -> None:
        convert_disk(src, dst, fmt, compress=compress, extra=extra)

    def disk_info(self, path: Path) -> dict[str, Any]:
        return disk_info(path)

    def make_cd(
        self, iso: Path, files: Sequence[Path], label: str, content: Mapping[str, str] | None = None
    ) -> None:
        make_cd(iso, files, label, content)

    def make_floppy(
        self,
        image: Path,
        files: Sequence[Path],
        dirs: Sequence[Path],
        content: Mapping[str, str],
        label: str,
    ) -> None:
        make_floppy(image, files, dirs, content, label)

    def create_overlay(
        self, path: Path, base: Path | str, size: Size, extra: Sequence[str] = ()
    ) -> None:
        create_overlay(path, base, size, extra)

    def copy_image(self, src: Path | str, dst: Path, fmt: str, extra: Sequence[str] = ()) -> None:
        copy_image(src, dst, fmt, extra)

    def resize_disk(self, path: Path, fmt: str, size: Size, extra: Sequence[str] = ()) -> None:
        resize_disk(path, fmt, size, extra)

    def start_swtpm(
        self, state_dir: Path, socket_path: Path, *, tpm1: bool
    ) -> subprocess.Popen[bytes]:
        """swtpm serving one TPM on a unix control socket (Packer's stepCreatevTPM)."""
        if shutil.which("swtpm") is None:
            raise PackwrapError("vtpm needs swtpm; install swtpm (apt-get install swtpm)")
        argv = ["swtpm", "socket", "--tpmstate", f"dir={state_dir}"]
        argv += ["--ctrl", f"type=unixio,path={socket_path}"]
        if not tpm1:
            argv.append("--tpm2")
        with open(state_dir / "swtpm.log", "wb") as log:  # the child keeps its own copy
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def choose_accelerator(self, requested: str, binary: str, cpu_model: str | None) -> Choice:
        """The accelerator for this host and the guest arch, and why (accel.py)."""
        from packwrap_qemu.accel import choose

        return choose(requested, binary, cpu_model)

    def start(
        self, argv: list[str], qmp_path: Path, stderr_log: Path, *, die_with_parent: bool = True
    ) -> QemuProcess:
        """Start QEMU paused (-S) with QMP; the caller opens the console, then `cont`."""
        return QemuProcess(argv, qmp_path, stderr_log, die_with_parent=die_with_parent)
