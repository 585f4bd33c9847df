"""Shared e2e fixtures: the fixture media, packwrap run as a user runs it, and clean-up.

Every process a test starts (packwrap, and each QEMU pid packwrap reports) is killed by
its pid at teardown, even when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("qemu-system-x86_64", "qemu-img", "busybox")
QEMU_PID = re.compile(r"QEMU pid (\d+)")


@pytest.fixture(scope="session")
def fixture_media() -> Path:
    """The bsd.rd stand-in (kernel, initrd, ISO), built once and cached."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    from tests.fixture_support import fixture_dir

    return Path(fixture_dir())


@dataclass
class Run:
    rc: int
    out: str  # stdout and stderr, interleaved

    @property
    def error_line(self) -> str:
        """The "Build '...' errored: ..." line (StopIteration if the build did not fail)."""
        return next(ln for ln in self.out.splitlines() if "errored" in ln)


def pid_alive(pid: int) -> bool:
    """True if `pid` runs and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _is_qemu(pid: int) -> bool:
    try:
        return b"qemu-system" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class Packwrap:
    """Runs `python -m packwrap ...`; remembers every process for the teardown."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.logs: dict[int, Path] = {}
        self.qemu_pids: set[int] = set()

    def start(self, *args: str, cwd: Path) -> subprocess.Popen:
        log = self.tmp / f"packwrap-{len(self.procs)}.out"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PACKWRAP_NO_COLOR": "1"}
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "packwrap", *args],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.procs.append(proc)
        self.logs[proc.pid] = log
        return proc

    def output(self, proc: subprocess.Popen) -> str:
        text = self.logs[proc.pid].read_text(errors="replace")
        self.qemu_pids.update(int(p) for p in QEMU_PID.findall(text))
        return text

    def wait_for(self, proc: subprocess.Popen, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output(proc)
            if text in out:
                return out
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not seen in packwrap's output:\n{self.output(proc)}")

    def run(self, *args: str, cwd: Path, timeout: float = 60) -> Run:
        proc = self.start(*args, cwd=cwd)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"packwrap {args} timed out:\n{self.output(proc)}") from None
        return Run(proc.returncode, self.output(proc))

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            self.output(proc)
        for pid in self.qemu_pids:
            if pid_alive(pid) and _is_qemu(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def packwrap(tmp_path: Path):
    pw = Packwrap(tmp_path)
    try:
        yield pw
    finally:
        pw.cleanup()


def new_project(
    pw: Packwrap,
    parent: Path,
    media: Path,
    *variables: str,
    name: str = "img",
    root_password: str | None = None,
    blueprint: str = "openbsd-76",
) -> Path:
    """`packwrap new openbsd-76 --builder qemu` on the fixture ISO, hermetic, small and fast
    (the disk is sparse: 2G satisfies the blueprint's disklabel at no cost)."""
    project = parent / name
    password = ["--root-password", root_password] if root_password else ["--no-root-password"]
    args = [
        "new", blueprint, str(project), "--builder", "qemu", *password,
        "--var", f"iso_url={media / 'install76.iso'}", "--var", "iso_checksum=none",
        "--var", "hermetic_network=true", "--var", "disk_size=2G", "--var", "memory=256",
        "--var", "qemu_accelerator=tcg", "--var", "shutdown_timeout=60s",
        "--var", "boot_expect_timeout=30s",
    ]  # fmt: skip
    for v in variables:
        args += ["--var", v]
    result = pw.run(*args, cwd=parent)
    assert result.rc == 0, result.out
    return project
