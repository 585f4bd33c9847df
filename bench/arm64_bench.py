#!/usr/bin/env python3
"""arm64 build benchmark (not a test: figures for bench/README.md).

usage: .venv/bin/python bench/arm64_bench.py [--runs N]

In one run, on the arm64 fixture (install76.img through AAVMF under qemu-system-aarch64,
TCG), interleaved:

  bare       this script alone: the QEMU command line packwrap uses (same machine, CPU,
             firmware with a fresh vars copy, disks), the serial pty opened, `<enter>` at
             `boot> `, `A` and the response-file URL typed at the prompts, wait for QEMU
             to exit after the installer's reboot. Timed QEMU start -> exit.
  packwrap   `packwrap build .` of a `packwrap new openbsd-76 --arch arm64` project on the
             same image (whole command, wall: disk creation, firmware copy, HTTP server,
             accelerator choice, QEMU, compaction, manifest, checksum).

Prints each run, the medians and packwrap / bare (target <= 1.15).
"""

from __future__ import annotations

import argparse
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import termios
import time
import tty
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "plugin"))

from tests.fixture_support import arm64_fixture_dir, create_disk, docroot  # noqa: E402

PW = [sys.executable, "-m", "packwrap"]
PROMPTS = [
    (rb"boot> ", b"\r"),
    (rb"\(I\)nstall, \(U\)pgrade, \(A\)utoinstall or \(S\)hell\? ", b"A\r"),
    (rb"Response file location\? (\[[^\]]*\] )?", b"http://10.0.2.100/install.conf\r"),
]


def new_project(work: Path, image: Path) -> Path:
    project = work / "a64"
    args = ["new", "openbsd-76", str(project), "--arch", "arm64", "--builder", "qemu",
            "--no-root-password", "--var", f"iso_url={image}", "--var", "iso_checksum=none",
            "--var", "hermetic_network=true", "--var", "disk_size=2G", "--var", "memory=512",
            "--var", "qemu_accelerator=tcg", "--var", "shutdown_timeout=10m",
            "--var", "boot_expect_timeout=10m", "--var", "hostname=bench"]  # fmt: skip
    subprocess.run([*PW, *args], check=True, capture_output=True)
    return project


def run_packwrap(work: Path, image: Path) -> float:
    project = new_project(work, image)
    t0 = time.monotonic()
    # -force-install: every round a whole install (a cache hit would skip it)
    proc = subprocess.run(
        [*PW, "build", "-force-install", "."], cwd=project, capture_output=True, text=True
    )
    took = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"packwrap build failed:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    return took


def run_bare(work: Path, image: Path, files: dict[str, str]) -> float:
    from packwrap_qemu.firmware import find_firmware

    code, vars_template = find_firmware("qemu-system-aarch64")
    vars_copy = work / "efivars.fd"
    shutil.copyfile(vars_template, vars_copy)
    disk = create_disk(work / "disk.qcow2", "2G", "qcow2")
    with docroot(files) as (_, srv):
        argv = ["qemu-system-aarch64", "-machine", "virt,acpi=off", "-accel", "tcg",
                "-cpu", "cortex-a57", "-m", "512M", "-smp", "cpus=1", "-display", "none",
                "-drive", f"file={code},if=pflash,unit=0,format=raw,readonly=on",
                "-drive", f"file={vars_copy},if=pflash,unit=1,format=raw",
                "-drive", f"file={disk},format=qcow2,if=none,id=d0",
                "-device", "virtio-blk-pci,drive=d0",
                "-drive", f"file={image},if=none,id=m2,format=raw,snapshot=on",
                "-device", "virtio-blk-pci,drive=m2,bootindex=0",
                "-netdev", "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:"
                f"busybox nc 127.0.0.1 {srv.port}",
                "-device", "virtio-net-pci,netdev=n0,romfile=", "-nodefaults",
                "-no-user-config", "-no-reboot", "-chardev", "pty,id=ser0",
                "-serial", "chardev:ser0"]  # fmt: skip
        t0 = time.monotonic()
        qemu = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            line = qemu.stdout.readline().decode()  # "char device redirected to /dev/pts/N"
            m = re.search(r"(/dev/pts/\d+)", line)
            if not m:
                raise SystemExit(f"no pty from QEMU: {line}")
            fd = os.open(m.group(1), os.O_RDWR | os.O_NOCTTY)
            tty.setraw(fd, termios.TCSANOW)
            buf, step = b"", 0
            log = open(work / "console.log", "wb")  # noqa: SIM115 - closed below
            while qemu.poll() is None:
                if not select.select([fd], [], [], 1.0)[0]:
                    if time.monotonic() - t0 > 600:
                        raise SystemExit(f"bare run timed out: {buf[-500:]!r}")
                    continue
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                log.write(chunk)
                log.flush()
                buf += chunk
                if step < len(PROMPTS) and re.search(PROMPTS[step][0], buf):
                    os.write(fd, PROMPTS[step][1])
                    buf, step = b"", step + 1
            qemu.wait(600)
            took = time.monotonic() - t0
            os.close(fd)
            log.close()
        finally:
            if qemu.poll() is None:
                qemu.kill()
                qemu.wait()
    if step < len(PROMPTS):
        raise SystemExit(f"bare run stopped at prompt {step}: {buf[-500:]!r}")
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    image = arm64_fixture_dir() / "install76.img"  # built outside the timed runs
    with tempfile.TemporaryDirectory(prefix="pw-a64-") as tmp:  # the build's own docroot
        http = new_project(Path(tmp), image) / "http"
        conf = (http / "install.conf.pkr.in").read_text()
        files = {"install.conf": conf.replace("{{ .HTTPIP }}:{{ .HTTPPort }}", "10.0.2.100:80"),
                 "disklabel": (http / "disklabel").read_text()}  # fmt: skip
    bare, pw = [], []
    for i in range(a.runs):
        with tempfile.TemporaryDirectory(prefix="pw-a64-") as tmp:
            bare.append(run_bare(Path(tmp), image, files))
        with tempfile.TemporaryDirectory(prefix="pw-a64-") as tmp:
            pw.append(run_packwrap(Path(tmp), image))
        print(f"run {i + 1}: bare {bare[-1]:.1f}s, packwrap build {pw[-1]:.1f}s", flush=True)
    mb, mp = statistics.median(bare), statistics.median(pw)
    print(f"median of {a.runs}: bare {mb:.1f}s (min {min(bare):.1f}), packwrap {mp:.1f}s "
          f"(min {min(pw):.1f}); packwrap / bare = {mp / mb:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
