#!/usr/bin/env python3
"""Build benchmark on the QEMU test fixture (not a test: figures for bench/README.md).

usage: .venv/bin/python bench/build_bench.py [--runs N] [--skip-packer] [--json FILE]

In one run, on the same fixture (bsd.rd booted with -kernel/-initrd, the install ISO
attached as cd0 for the sets, the same install.conf from `packwrap new openbsd-76`):

  bare       a minimal script (tests/fixture_support.QemuGuest): QEMU paused, pty found
             via QMP, type `A` and the response-file URL when the prompts appear, wait
             for the power-off. QEMU start -> exit; no disk creation, no conversion.
  packwrap   `packwrap build -only=qemu.bench .` (whole command, wall) and its
             QEMU start -> power-off part (from the build log's step timestamps).
  packer     Packer 1.6.6's qemu builder (`packer build`) on an equivalent pure-Packer
             template with its default boot_wait (10s) and the usual `<wait5>` after `A`;
             Packer types over VNC, so the fixture talks on tty0 (pwfixture.tty=tty0).
             Packer's user network is not restricted: the guest could reach out, so the
             template points it at nothing but the loopback HTTP server (10.0.2.2).
  parallel   `-parallel-builds=2` of two sources vs one build (wall).

Runs are interleaved (bare, packwrap, packer, parallel, then again) so load changes on
the machine hit every case alike; medians are reported with min-max.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixture_support import (  # noqa: E402
    BASE_APPEND,
    GUEST_HTTP_IP,
    QemuGuest,
    autoinstall,
    create_disk,
    docroot,
    fixture_dir,
)

PY = sys.executable
APPEND = f"{BASE_APPEND} pwfixture.cd=1"
CONF = "install.conf"

PACKWRAP_SOURCE = """
source "qemu" "{name}" {{
  iso_url          = var.iso_url
  iso_checksum     = var.iso_checksum
  kernel           = "{media}/bsd.rd"
  initrd           = "{media}/bsd.rd.initrd"
  kernel_args      = "{append}"
  output_directory = "${{var.output_directory}}/{name}"
  vm_name          = "{name}.qcow2"
  format           = "qcow2"
  disk_size        = var.disk_size
  memory           = var.memory
  accelerator      = "tcg"
  machine_type     = "q35"
  hermetic_network = true
  http_directory   = "http"
  communicator     = "none"
  shutdown_timeout = "2m"
  boot_command     = ["A<enter>", "http://{{{{ .HTTPIP }}}}:{{{{ .HTTPPort }}}}/{conf}<enter>"]
  boot_expect      = ["(A)utoinstall or (S)hell? ", "Response file location?"]
}}
"""
PACKWRAP_BUILD = """
build {
  sources = ["source.qemu.bench", "source.qemu.bench2"]
}
"""

PACKER_TEMPLATE = """
source "qemu" "bench" {{
  iso_url           = "{iso}"
  iso_checksum      = "none"
  output_directory  = "out"
  vm_name           = "bench.qcow2"
  format            = "qcow2"
  disk_size         = "2G"
  memory            = 256
  accelerator       = "tcg"
  machine_type      = "q35"
  headless          = true
  net_device        = "virtio-net"
  disk_interface    = "virtio"
  communicator      = "none"
  http_directory    = "http"
  http_bind_address = "127.0.0.1"
  http_port_min     = {port}
  http_port_max     = {port}
  shutdown_timeout  = "2m"
  boot_wait         = "10s"
  boot_command      = ["A<enter><wait5>",
                       "http://{{{{ .HTTPIP }}}}:{{{{ .HTTPPort }}}}/{conf}<enter>"]
  qemuargs = [
    ["-kernel", "{media}/bsd.rd"],
    ["-initrd", "{media}/bsd.rd.initrd"],
    ["-append", "{append} pwfixture.tty=tty0"],
    ["-no-reboot"],
  ]
}}

build {{
  sources = ["source.qemu.bench"]
}}
"""


def render(template: str, ip: str, port: int) -> str:
    return re.sub(r"\{\{\s*\.HTTPIP\s*\}\}", ip, re.sub(r"\{\{\s*\.HTTPPort\s*\}\}", str(port),
                                                        template))  # fmt: skip


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv: list[str], cwd: Path, log: Path, timeout: float = 300) -> float:
    """Run a command, return its wall time; raise with the log tail if it fails."""
    start = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)  # fmt: skip
        try:
            rc = proc.wait(timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    took = time.monotonic() - start
    if rc != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"{argv[:3]} failed (rc {rc}):\n" + "\n".join(tail))
    return took


class Bench:
    def __init__(self, work: Path, media: Path):
        self.work = work
        self.media = media
        self.project = work / "project"
        self.n = 0

    # -- set-up ---------------------------------------------------------------------
    def setup(self, with_packer: bool) -> None:
        argv = [PY, "-m", "packwrap", "new", "openbsd-76", str(self.project), "--builder",
                "qemu", "--root-password", "bench", "--var", "hostname=bench",
                "--var", f"iso_url={self.media / 'install76.iso'}", "--var", "iso_checksum=none",
                "--var", "disk_size=2G", "--var", "memory=256"]  # fmt: skip
        run(argv, self.work, self.work / "new.log")
        conf = self.project / "http" / "install.conf.pkr.in"
        self.conf_template = self.hermetic_conf = conf.read_text()
        for name in ("bench", "bench2"):
            (self.project / f"{name}.pkr.hcl").write_text(
                PACKWRAP_SOURCE.format(name=name, media=self.media, append=APPEND, conf=CONF)
            )
        (self.project / "bench-build.pkr.hcl").write_text(PACKWRAP_BUILD)
        if with_packer:
            self.packer_dir = self.work / "packer"
            (self.packer_dir / "http").mkdir(parents=True)
            self.packer_port = free_port()
            (self.packer_dir / "http" / "install.conf").write_text(
                render(self.conf_template, "10.0.2.2", self.packer_port)
            )
            shutil.copy(self.project / "http" / "disklabel", self.packer_dir / "http")
            (self.packer_dir / "bench.pkr.hcl").write_text(PACKER_TEMPLATE.format(
                iso=self.media / "install76.iso", media=self.media, append=APPEND,
                port=self.packer_port, conf=CONF))  # fmt: skip

    # -- cases ----------------------------------------------------------------------
    @property
    def cdrom(self) -> list[str]:
        # The ISO as an IDE CD, as packwrap and Packer attach it (sets from cd0).
        iso = self.media / "install76.iso"
        return ["-drive", f"file={iso},media=cdrom,if=ide,index=2,readonly=on"]

    def _bare_run(self, name: str, boot_answers: tuple[str, ...], **qemu: object) -> float:
        """A bare install with the blueprint's install.conf and disklabel on a fresh 2G
        disk: answer `boot> ` with boot_answers, then A + URL; QEMU start -> exit."""
        self.n += 1
        work = self.work / f"{name}{self.n}"
        work.mkdir()
        disk = create_disk(work / "disk.qcow2", "2G", "qcow2")
        files = {
            "install.conf": render(self.hermetic_conf, GUEST_HTTP_IP, 80),
            "disklabel": (self.project / "http" / "disklabel").read_text(),
        }
        with (
            docroot(files) as (_, srv),
            QemuGuest(work, disk, disk_format="qcow2", http_port=srv.port, **qemu) as guest,
        ):
            for text in boot_answers:
                guest.answer(r"boot> ", text, 120)
            autoinstall(guest)
            rc = guest.wait_exit(120)
            if rc != 0 or not guest.shutdown_reasons():
                raise RuntimeError(f"{name} boot failed: rc {rc}\n{guest.tail()}")
            return guest.t_exit - guest.t_start

    def bare(self) -> float:
        return self._bare_run("bare", (), kernel=True, append="pwfixture.cd=1", extra=self.cdrom)

    def bare_iso(self) -> float:
        """The ISO path's floor, with what the blueprint's ISO build has: the same
        install.conf and disk, the ISO as packwrap attaches it (IDE CD, `-boot once=d`,
        SeaBIOS on the serial line), the blueprint's three `boot> ` answers."""
        extra = [*self.cdrom, "-boot", "once=d", "-machine", "graphics=off"]
        return self._bare_run("bareiso", ("stty com0 115200", "set tty com0", ""), extra=extra)

    def packwrap(self, only: str, *flags: str) -> tuple[float, float | None]:
        self.n += 1
        log = self.work / f"packwrap{self.n}.log"
        # A fresh, empty install cache per build: each one installs (trees without the
        # cache ignore it).
        os.environ["XDG_CACHE_HOME"] = str(self.work / f"xdg{self.n}")
        try:
            wall = run([PY, "-m", "packwrap", "build", "-force", f"-only={only}", *flags, "."],
                       self.project, log)  # fmt: skip
        finally:
            shutil.rmtree(self.work / f"xdg{self.n}", ignore_errors=True)
        return wall, self._vm_time(only)

    def _vm_time(self, only: str) -> float | None:
        """QEMU start -> power-off, from the build log's step timestamps."""
        log = self.project / ".packwrap" / "logs" / f"packwrap-{only}.log"
        if "*" in only or not log.exists():
            return None
        start = end = None
        for line in log.read_text().splitlines():
            stamp = line.split(" ", 1)[0]
            if "step 'start QEMU': start" in line:
                start = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            if "step 'wait for power-off': done" in line:
                end = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        return (end - start).total_seconds() if start and end else None

    def bare_boot_script(self, iso: bool) -> float | None:
        """bench/bare_boot.py (the fixture's own floor: its own install.conf, sets over
        HTTP), QMP cont -> exit; None if the script is absent."""
        script = REPO / "bench" / "bare_boot.py"
        if not script.exists():
            return None
        argv = [PY, str(script), "-n", "1", "--json", *(["--iso"] if iso else [])]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"bare_boot.py failed:\n{out.stdout[-800:]}{out.stderr[-800:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])["median"]["boot_to_poweroff"]

    def packer(self) -> float:
        self.n += 1
        shutil.rmtree(self.packer_dir / "out", ignore_errors=True)
        return run(["packer", "build", "-force", "bench.pkr.hcl"], self.packer_dir,
                   self.work / f"packer{self.n}.log")  # fmt: skip


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    return f"{med:.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-packer", action="store_true")
    ap.add_argument(
        "--iso",
        action="store_true",
        help="also: bench/bare_boot.py (kernel, ISO) and the blueprint's ISO build",
    )
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = ap.parse_args()
    with_packer = not args.skip_packer and shutil.which("packer") is not None
    media = fixture_dir()
    results: dict[str, list[float]] = {k: [] for k in (
        "bare", "packwrap_wall", "packwrap_vm", "packer", "one_build", "two_parallel",
        "bare_boot_py", "bare_boot_py_iso", "bare_iso", "iso_packwrap_wall",
        "iso_packwrap_vm")}  # fmt: skip
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="packwrap-bench-") as tmp:
        if args.keep:
            shutil.rmtree(args.keep, ignore_errors=True)
            args.keep.mkdir(parents=True)
        bench = Bench(args.keep or Path(tmp), media)
        bench.setup(with_packer)
        for i in range(args.runs):
            results["bare"].append(bench.bare())
            wall, vm = bench.packwrap("qemu.bench")
            results["packwrap_wall"].append(wall)
            if vm is not None:
                results["packwrap_vm"].append(vm)
            if with_packer:
                results["packer"].append(bench.packer())
            results["one_build"].append(wall)
            two, _ = bench.packwrap("qemu.bench*", "-parallel-builds=2")
            results["two_parallel"].append(two)
            if args.iso:
                for iso, key in ((False, "bare_boot_py"), (True, "bare_boot_py_iso")):
                    value = bench.bare_boot_script(iso)
                    if value is not None:
                        results[key].append(value)
                results["bare_iso"].append(bench.bare_iso())
                wall, vm = bench.packwrap("qemu.openbsd-76")
                results["iso_packwrap_wall"].append(wall)
                if vm is not None:
                    results["iso_packwrap_vm"].append(vm)
            print(f"run {i + 1}/{args.runs}: " + ", ".join(
                f"{k} {v[-1]:.2f}" for k, v in results.items() if v), flush=True)  # fmt: skip
    load_after = os.getloadavg()

    med = {k: statistics.median(v) for k, v in results.items() if v}
    print()
    print(f"build benchmark: {args.runs} runs, {os.cpu_count()} CPUs, TCG; load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after")  # fmt: skip
    print("| case | median (min-max) |")
    print("|---|---|")
    print(f"| bare boot -> power-off (QEMU start to exit) | {summary(results['bare'])} |")
    print(f"| packwrap build, QEMU start -> power-off | {summary(results['packwrap_vm'])} |")
    print(f"| packwrap build, whole command | {summary(results['packwrap_wall'])} |")
    if with_packer:
        print(f"| packer 1.6.6 build (boot_wait 10s) | {summary(results['packer'])} |")
    print(f"| 1 build (wall) | {summary(results['one_build'])} |")
    print(f"| 2 builds, -parallel-builds=2 (wall) | {summary(results['two_parallel'])} |")
    if args.iso:
        print(f"| bench/bare_boot.py, bsd.rd (its own install.conf) | "
              f"{summary(results['bare_boot_py'])} |")  # fmt: skip
        print(f"| bench/bare_boot.py --iso | {summary(results['bare_boot_py_iso'])} |")
        print(f"| bare ISO boot, as packwrap attaches it, blueprint install.conf | "
              f"{summary(results['bare_iso'])} |")  # fmt: skip
        print(f"| packwrap build, ISO (blueprint source), QEMU start -> power-off | "
              f"{summary(results['iso_packwrap_vm'])} |")  # fmt: skip
        print(f"| packwrap build, ISO (blueprint source), whole command | "
              f"{summary(results['iso_packwrap_wall'])} |")  # fmt: skip
    ratios = {}
    if "bare" in med:
        ratios["packwrap_wall/bare"] = med["packwrap_wall"] / med["bare"]
        if "packwrap_vm" in med:
            ratios["packwrap_vm/bare"] = med["packwrap_vm"] / med["bare"]
    if "packer" in med:
        ratios["packwrap_wall/packer"] = med["packwrap_wall"] / med["packer"]
    ratios["two_parallel/one_build"] = med["two_parallel"] / med["one_build"]
    if "bare_iso" in med and "iso_packwrap_wall" in med:
        ratios["iso_packwrap_wall/bare_iso"] = med["iso_packwrap_wall"] / med["bare_iso"]
        if "iso_packwrap_vm" in med:
            ratios["iso_packwrap_vm/bare_iso"] = med["iso_packwrap_vm"] / med["bare_iso"]
    if "bare_boot_py_iso" in med and "iso_packwrap_wall" in med:
        ratios["iso_packwrap_wall/bare_boot_py_iso"] = (
            med["iso_packwrap_wall"] / med["bare_boot_py_iso"]
        )
        ratios["iso_packwrap_vm/bare_boot_py_iso"] = (
            med["iso_packwrap_vm"] / med["bare_boot_py_iso"]
        )
    for k, v in ratios.items():
        print(f"{k}: {v:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "ratios": ratios,
                                         "load": [load_before, load_after]}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
