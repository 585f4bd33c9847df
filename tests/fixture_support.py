"""Helpers for tests that boot packwrap's OpenBSD stand-in fixture.

- fixture_dir(): build (once, cached, under a file lock so parallel pytest
  workers build it once) and return the fixture directory:
  $PACKWRAP_FIXTURE_CACHE or <repo>/.cache/fixture. See
  scripts/fixture/build_fixture.py for what it holds.
- read_installed_tar(disk, fmt): the "installed system" tar at the start of a
  raw or qcow2 disk, as {path: bytes} (directories and links map to None).
- DocrootServer: a loopback HTTP server for install.conf and sets.
- QemuGuest: a tiny QEMU driver (paused start, pty serial found via QMP,
  hermetic user networking, expect/type, wait for power-off, kill by pid).
- require_qemu(): skip a test when QEMU or its tools are truly absent.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib.util
import io
import json
import os
import re
import select
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILDER = REPO / "scripts" / "fixture" / "build_fixture.py"
GUEST_HTTP_IP = "10.0.2.100"  # the guestfwd address the guest reaches the docroot at

# Kernel args for booting the fixture with -kernel (the bsd.rd path).
BASE_APPEND = "console=ttyS0,115200 quiet loglevel=1 panic=-1"


def require_qemu() -> None:
    """Skip the calling test if QEMU, qemu-img or busybox are not installed."""
    import pytest

    for tool in ("qemu-system-x86_64", "qemu-img", "busybox"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


def _load_builder():
    spec = importlib.util.spec_from_file_location("pw_build_fixture", BUILDER)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


@functools.lru_cache(maxsize=1)
def fixture_dir() -> Path:
    """Build the fixture if needed and return its directory (cached)."""
    cache = os.environ.get("PACKWRAP_FIXTURE_CACHE") or str(REPO / ".cache" / "fixture")
    return _load_builder().ensure(cache, quiet=True)


@functools.lru_cache(maxsize=1)
def arm64_fixture_dir() -> Path:
    """The arm64 fixture (install76.img booted through AAVMF), built if needed (cached)."""
    spec = importlib.util.spec_from_file_location(
        "pw_build_fixture_arm64", BUILDER.with_name("build_fixture_arm64.py")
    )
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    cache = os.environ.get("PACKWRAP_FIXTURE_ARM64_CACHE") or str(REPO / ".cache" / "fixture-arm64")
    return mod.ensure(cache, quiet=True)


# --------------------------------------------------------------------------
# Reading the installed system back
# --------------------------------------------------------------------------


def _disk_head(disk: str | os.PathLike, fmt: str, max_bytes: int) -> bytes:
    size = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", "-f", fmt, str(disk)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )["virtual-size"]
    count = min(size, max_bytes) // (1 << 20) or 1
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "head.raw"
        subprocess.run(
            [
                "qemu-img",
                "dd",
                "-f",
                fmt,
                "-O",
                "raw",
                f"if={disk}",
                f"of={raw}",
                "bs=1M",
                f"count={count}",
            ],
            check=True,
            capture_output=True,
        )
        return raw.read_bytes()


def installed_tar_members(
    disk: str | os.PathLike, fmt: str = "raw", max_bytes: int = 64 << 20
) -> list[tarfile.TarInfo]:
    """TarInfo of every member of the tar at the start of the disk."""
    with tarfile.open(fileobj=io.BytesIO(_disk_head(disk, fmt, max_bytes))) as tar:
        return tar.getmembers()


def read_installed_tar(
    disk: str | os.PathLike, fmt: str = "raw", max_bytes: int = 64 << 20
) -> dict[str, bytes | None]:
    """{path: content} of the installed tree ('etc/myname' style paths)."""
    out: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(_disk_head(disk, fmt, max_bytes))) as tar:
        for m in tar.getmembers():
            name = m.name.removeprefix("./").rstrip("/")
            if not name:
                continue
            f = tar.extractfile(m) if m.isfile() else None
            out[name] = f.read() if f else None
    return out


def create_disk(path: str | os.PathLike, size: str = "64M", fmt: str = "raw") -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), size], check=True)
    return Path(path)


# --------------------------------------------------------------------------
# Loopback HTTP docroot
# --------------------------------------------------------------------------


class DocrootServer:
    """ThreadingHTTPServer on 127.0.0.1:<free port> serving `root`."""

    def __init__(self, root: str | os.PathLike):
        self.root = str(root)
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, fmt: str, *args: object) -> None:
                requests.append(self.requestline)

        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=self.root)
        )
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> DocrootServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# QEMU driver
# --------------------------------------------------------------------------


class GuestError(AssertionError):
    """The guest did not do what the test expected (with the console tail)."""


class QemuGuest:
    """One QEMU VM on the fixture. Use as a context manager: QEMU is killed by
    pid on exit, whatever happened.

    kernel boot (bsd.rd path):  QemuGuest(workdir, disk, kernel=True)
    ISO boot:                   QemuGuest(workdir, disk, iso=fixture/'install76.iso')
    installed system:           QemuGuest(workdir, disk, kernel=True,
                                          append='pwfixture.mode=installed', ssh_port=N)
    """

    def __init__(
        self,
        workdir: str | os.PathLike,
        disk: str | os.PathLike,
        *,
        disk_format: str = "raw",
        kernel: bool = False,
        iso: str | None = None,
        append: str = "",
        http_port: int | None = None,
        ssh_port: int | None = None,
        fixture: Path | None = None,
        memory: str = "256",
        extra: list[str] = (),
        restrict: bool = True,
        netdev_opts: str = "",
    ):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        fx = fixture or fixture_dir()
        self.qmp_path = self.workdir / "qmp.sock"
        self.qmp_path.unlink(missing_ok=True)
        # restrict=on: the guest reaches nothing but the guestfwd/hostfwd
        # (every test). restrict=False is Packer's network (benchmarks only):
        # then slirp's DHCP also hands out a router and DNS.
        netdev = "user,id=n0,restrict=on" if restrict else "user,id=n0"
        if http_port:
            netdev += f",guestfwd=tcp:{GUEST_HTTP_IP}:80-cmd:busybox nc 127.0.0.1 {http_port}"
        if ssh_port:
            netdev += f",hostfwd=tcp:127.0.0.1:{ssh_port}-:22"
        if netdev_opts:  # e.g. "bootfile=auto_install,hostname=foo" (netboot)
            netdev += "," + netdev_opts
        # q35, TCG (KVM does not work on the CI machines), no defaults,
        # -no-reboot (the installer's reboot ends the VM), paused until cont.
        fixed = "-machine q35 -accel tcg -cpu max -smp 1 -nodefaults -no-user-config"
        fixed += " -display none -no-reboot -S -chardev pty,id=ser0 -serial chardev:ser0"
        fixed += " -device virtio-blk-pci,drive=d0 -device virtio-net-pci,romfile=,netdev=n0"
        argv = ["qemu-system-x86_64", *fixed.split(), "-m", memory]
        argv += ["-drive", f"file={disk},if=none,id=d0,format={disk_format}"]
        argv += ["-netdev", netdev, "-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
        if kernel:
            argv += [
                "-kernel",
                str(fx / "bsd.rd"),
                "-initrd",
                str(fx / "bsd.rd.initrd"),
                "-append",
                f"{BASE_APPEND} {append}".strip(),
            ]
        if iso:
            # virtio-scsi CD, like vmd's vioscsi cd0; SeaBIOS boots from it.
            argv += [
                "-drive",
                f"file={iso},if=none,id=cd0,media=cdrom,format=raw,readonly=on",
                "-device",
                "virtio-scsi-pci,id=scsi0",
                "-device",
                "scsi-cd,drive=cd0,bus=scsi0.0,bootindex=0",
            ]
        argv += list(extra)
        self.argv = argv
        self.log_path = self.workdir / "serial.log"
        self.buf = b""
        self.events: list[dict] = []
        self._lock = threading.Condition()
        self._eof = False
        self.proc: subprocess.Popen | None = None
        self._stderr = open(self.workdir / "qemu.stderr", "wb")  # noqa: SIM115 (lives with QEMU)

    # -- lifecycle --------------------------------------------------------

    def __enter__(self) -> QemuGuest:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=self._stderr, stderr=self._stderr)
        self.t_start = time.monotonic()
        self._qmp = self._qmp_connect()
        chardevs = self._qmp_cmd("query-chardev")["return"]
        pty = next(c["filename"] for c in chardevs if c["label"] == "ser0").removeprefix("pty:")
        self.fd = os.open(pty, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed with the reader)
        threading.Thread(target=self._reader, daemon=True).start()
        threading.Thread(target=self._qmp_reader, daemon=True).start()
        self._qmp_send("cont")
        self.t_cont = time.monotonic()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError, AttributeError):
            self._qmp_sock.close()
        self._stderr.close()

    # -- QMP --------------------------------------------------------------

    def _qmp_connect(self, timeout: float = 15) -> io.BufferedRWPair:
        end = time.monotonic() + timeout
        while True:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(str(self.qmp_path))
                break
            except OSError:
                s.close()
                if time.monotonic() > end or self.proc.poll() is not None:
                    raise GuestError("QEMU did not start: " + self.stderr_text()) from None
                time.sleep(0.02)
        self._qmp_sock = s
        f = s.makefile("rwb", buffering=0)
        json.loads(f.readline())
        self._qmp_f = f
        self._qmp_cmd("qmp_capabilities")
        return f

    def _qmp_send(self, name: str) -> None:
        self._qmp_f.write(json.dumps({"execute": name}).encode() + b"\n")

    def _qmp_cmd(self, name: str) -> dict:
        self._qmp_send(name)
        while True:
            r = json.loads(self._qmp_f.readline())
            if "event" in r:
                self.events.append(r)
                continue
            return r

    def _qmp_reader(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in self._qmp_f:
                r = json.loads(line)
                if "event" in r:
                    with self._lock:
                        self.events.append(r)
                        self._lock.notify_all()

    def shutdown_reasons(self) -> list[str]:
        return [e["data"].get("reason") for e in self.events if e.get("event") == "SHUTDOWN"]

    # -- console ----------------------------------------------------------

    def _reader(self) -> None:
        while True:
            r, _, _ = select.select([self.fd], [], [], 0.2)
            if not r:
                if self.proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                data = b""
            if not data:  # QEMU closed the pty: it exited
                break
            self._log.write(data)
            self._log.flush()
            with self._lock:
                self.buf += data
                self._lock.notify_all()
        with self._lock:
            self._eof = True
            self._lock.notify_all()

    def text(self) -> str:
        return self.buf.decode(errors="replace")

    def tail(self, n: int = 25) -> str:
        return "\n".join(self.text().replace("\r", "").splitlines()[-n:])

    def stderr_text(self) -> str:
        with contextlib.suppress(OSError):
            return (self.workdir / "qemu.stderr").read_text(errors="replace")[-2000:]
        return ""

    def expect(self, pattern: str, timeout: float = 60, start: int = 0) -> re.Match:
        """Wait for regex `pattern` in the console output from offset `start`."""
        rx = re.compile(pattern.encode())
        end = time.monotonic() + timeout
        with self._lock:
            while True:
                m = rx.search(self.buf, start)
                if m:
                    return m
                left = end - time.monotonic()
                if left <= 0 or self._eof:
                    why = "timeout" if left <= 0 else self._exit_info()
                    raise GuestError(f"{why} waiting for {pattern!r}; console tail:\n{self.tail()}")
                self._lock.wait(min(left, 0.5))

    def _exit_info(self) -> str:
        rc = self.proc.poll() if self.proc else None
        return (
            f"QEMU exited (rc={rc}, events={self.shutdown_reasons()}, "
            f"stderr={self.stderr_text().strip()[-300:]!r})"
        )

    def type(self, text: str) -> None:
        """Type text; '\\n' is sent as CR, as a terminal's Enter key."""
        os.write(self.fd, text.replace("\n", "\r").encode())

    def answer(self, prompt: str, text: str, timeout: float = 60) -> re.Match:
        m = self.expect(prompt, timeout, start=getattr(self, "_pos", 0))
        self._pos = m.end()
        self.type(text + "\n")
        return m

    def wait_exit(self, timeout: float = 60) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise GuestError(
                f"QEMU still running after {timeout}s; console tail:\n{self.tail()}"
            ) from None
        self.t_exit = time.monotonic()
        # Let the readers drain the last output and events.
        with self._lock:
            end = time.monotonic() + 2
            while not self._eof and time.monotonic() < end:
                self._lock.wait(0.1)
            while (
                "SHUTDOWN" not in [e.get("event") for e in self.events] and time.monotonic() < end
            ):
                self._lock.wait(0.1)
        return rc


def autoinstall(
    guest: QemuGuest, url: str = f"http://{GUEST_HTTP_IP}/install.conf", timeout: float = 60
) -> None:
    """Type the autoinstall boot command: 'A', then the response file URL."""
    guest.answer(r"\(I\)nstall, \(U\)pgrade, \(A\)utoinstall or \(S\)hell\? ", "A", timeout)
    guest.answer(r"Response file location\? (\[[^\]]*\] )?", url, timeout)


@contextlib.contextmanager
def docroot(files: dict[str, str | bytes]) -> Iterator[tuple[Path, DocrootServer]]:
    """A temporary docroot with `files` ({relative path: content}), served."""
    with tempfile.TemporaryDirectory(prefix="pwfx-http-") as tmp:
        root = Path(tmp)
        for name, content in files.items():
            p = root / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content.encode() if isinstance(content, str) else content)
        with DocrootServer(root) as srv:
            yield root, srv
