"""The one way packwrap runs a host program to its end while a build waits on it: the
packer hand-off (build/session.py), shell-local's scripts (postprocess/shell_local.py)
and the post-processors' tools (postprocess/tools.py).

The child starts in a session of its own, so a terminal's Ctrl-C reaches it only
through us, once. Its output is read line by line on a thread and handed to the caller;
the last lines are kept for a one-line error. A cancel (the build's cancel event) ends
the child's whole process group: SIGTERM, then SIGKILL after a grace period. Something
the child left running that still holds its output is ended the same way, so no
process outlives the run.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from packwrap.errors import Cancelled, PackwrapError

TAIL_LINES = 10
#: How often the cancel event is looked at while the child runs.
POLL_SECONDS = 0.05
#: How long the output may stay open after the child exits (a background grandchild).
DRAIN_SECONDS = 2.0


@dataclass(frozen=True)
class Finished:
    """How a child ended: its exit status and its last lines (of stderr when kept apart,
    else of its output), without their newlines."""

    status: int
    tail: list[str]


@dataclass(frozen=True)
class Cancel:
    """The build's cancel event, and what the run was doing (for `interrupted during`)."""

    event: threading.Event
    during: str


def run_child(
    argv: list[str],
    on_line: Callable[[str], None],
    *,
    what: str | None = None,
    cancel: Cancel | None = None,
    cwd: Path | None = None,
    separate_stderr: bool = False,
    grace: float = 5.0,
    on_start: Callable[[subprocess.Popen[str] | None], None] | None = None,
) -> Finished:
    """Run argv to its end, each output line (newline kept) to on_line.

    stderr joins stdout unless separate_stderr, when it only fills the tail. A child
    that cannot start is `<what>: cannot run <program>: <reason>`; a cancel raises
    Cancelled after the child is ended. on_start sees the child once started, and None
    once it is gone (the packer hand-off forwards signals to it meanwhile)."""
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if separate_stderr else subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        prefix = f"{what}: " if what else ""
        raise PackwrapError(f"{prefix}cannot run {argv[0]}: {exc.strerror}") from None
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    readers = [_reader(proc.stdout, on_line if separate_stderr else _tee(on_line, tail))]
    if separate_stderr:
        readers.append(_reader(proc.stderr, _tee(None, tail)))
    if on_start:
        on_start(proc)
    try:
        _wait(proc, cancel)
    finally:
        end(proc, grace)
        if on_start:
            on_start(None)
        _drain(proc, readers)
    return Finished(proc.returncode, list(tail))


def end(proc: subprocess.Popen[str] | subprocess.Popen[bytes], grace: float = 0.0) -> None:
    """Stop a child we started, by its own pid (its process group when it leads one):
    SIGTERM, then SIGKILL after `grace` seconds (at once when 0), and reap it."""
    if proc.poll() is not None:
        return
    leads_group = _leads_group(proc.pid)
    signals = [(signal.SIGTERM, grace)] if grace > 0 else []
    for sig, wait in [*signals, (signal.SIGKILL, None)]:
        with contextlib.suppress(ProcessLookupError):
            if leads_group:
                os.killpg(proc.pid, sig)
            else:
                os.kill(proc.pid, sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def _wait(proc: subprocess.Popen[str], cancel: Cancel | None) -> None:
    # A sleep, not proc.wait(): the main thread stays free for signal handlers.
    while proc.poll() is None:
        if cancel is None:
            time.sleep(POLL_SECONDS)
        elif cancel.event.wait(POLL_SECONDS):
            raise Cancelled(f"interrupted during {cancel.during}")


def _drain(proc: subprocess.Popen[str], readers: list[threading.Thread]) -> None:
    """Let the readers finish; a grandchild still holding the output is ended with the
    child's process group (the child's pid names it)."""
    deadline = time.monotonic() + DRAIN_SECONDS
    for reader in readers:
        reader.join(max(0.0, deadline - time.monotonic()))
    if any(r.is_alive() for r in readers):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        for reader in readers:
            reader.join(DRAIN_SECONDS)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None and not any(r.is_alive() for r in readers):
            stream.close()


def _tee(
    on_line: Callable[[str], None] | None, tail: collections.deque[str]
) -> Callable[[str], None]:
    def take(line: str) -> None:
        tail.append(line.rstrip("\n"))
        if on_line:
            on_line(line)

    return take


def _reader(stream: IO[str] | None, take: Callable[[str], None]) -> threading.Thread:
    def pump(lines: Iterable[str]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in lines:
                take(line)

    assert stream is not None
    thread = threading.Thread(target=pump, args=(stream,), name="child-output", daemon=True)
    thread.start()
    return thread
