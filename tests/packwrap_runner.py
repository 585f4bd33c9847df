"""The one way tests run packwrap as a user does: `python -m packwrap ...` in a subprocess.

- `run_cli(*args)`: a short command; stdout and stderr captured apart.
- `started(*args)`: the same as a context manager, for a test that acts while it runs.
- `Packwrap`: long commands (builds): output to a log file polled while they run; every
  process and each QEMU pid packwrap reports is remembered, and `cleanup()` ends them by
  pid, even when the test failed.

Each child gets `cli_env()`: unbuffered output and no colour, so tests read plain text.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
QEMU_PID = re.compile(r"QEMU pid (\d+)")


def cli_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """`base` (default: this process's environment) for a packwrap child, plus `extra`."""
    env = dict(os.environ if base is None else base)
    env.update(PYTHONUNBUFFERED="1", PACKWRAP_NO_COLOR="1", NO_COLOR="1")
    env.update(extra)
    return env


def packwrap_argv(*args: str, module: str = "packwrap") -> list[str]:
    return [sys.executable, "-m", module, *args]


@contextlib.contextmanager
def started(
    *args: str, env: Mapping[str, str] | None = None, **popen: Any
) -> Iterator[subprocess.Popen[str]]:
    """packwrap running with piped output; killed by its pid on the way out if still alive."""
    proc = subprocess.Popen(
        packwrap_argv(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(env),
        **popen,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60, **popen: Any
) -> subprocess.CompletedProcess[str]:
    """Run packwrap to the end (at most `timeout` s); stdout and stderr apart."""
    with started(*args, env=env, **popen) as proc:
        out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


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
    """Runs `python -m packwrap ...` with its output in a log; remembers every process."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}
        self.qemu_pids: set[int] = set()

    def start(
        self,
        *args: str,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        module: str = "packwrap",
        wrap: Sequence[str] = (),
    ) -> subprocess.Popen[bytes]:
        """Start packwrap (or `module`, a test hook that runs it) under the `wrap` prefix
        (e.g. `unshare -n ...`); `env` is the full environment (default: `cli_env()`)."""
        log = self.tmp / f"packwrap-{len(self.procs)}.out"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [*wrap, *packwrap_argv(*args, module=module)],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=cli_env() if env is None else dict(env),
            )
        self.procs.append(proc)
        self.logs[proc.pid] = log
        return proc

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        text = self.logs[proc.pid].read_text(errors="replace")
        self.qemu_pids.update(int(p) for p in QEMU_PID.findall(text))
        return text

    def wait_for(self, proc: subprocess.Popen[bytes], text: str, timeout: float = 30) -> str:
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
