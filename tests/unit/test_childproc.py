"""packwrap/childproc.py, the one streamed child-process runner: real /bin/sh children,
real signals, every child ended by its own pid or process group."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from packwrap import childproc
from packwrap.childproc import Cancel, end, run_child
from packwrap.errors import Cancelled, PackwrapError


def sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]


def gone(pid: int, seconds: float = 5.0) -> bool:
    """True once pid has exited (it is not our child, so it cannot be reaped here)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)  # a test must not leave it behind
    return False


def test_lines_stream_in_order_and_the_tail_keeps_the_last_ten() -> None:
    lines: list[str] = []
    done = run_child(sh("for i in $(seq 1 12); do echo line $i; done; echo err >&2; exit 3"),
                     lines.append)  # fmt: skip
    assert lines == [f"line {i}\n" for i in range(1, 13)] + ["err\n"]
    assert done.status == 3
    assert done.tail == [f"line {i}" for i in range(4, 13)] + ["err"]


def test_separate_stderr_fills_only_the_tail(tmp_path: Path) -> None:
    lines: list[str] = []
    done = run_child(sh("printf 'a\\nb'; echo oops >&2; echo '' >&2"), lines.append,
                     separate_stderr=True, cwd=tmp_path)  # fmt: skip
    assert "".join(lines) == "a\nb"
    assert done.tail == ["oops", ""]


def test_a_program_that_cannot_start_is_one_line() -> None:
    with pytest.raises(PackwrapError, match=r"^compress: cannot run /nonexistent/x: No such file"):
        run_child(["/nonexistent/x"], print, what="compress")
    with pytest.raises(PackwrapError, match=r"^cannot run /nonexistent/x: No such file"):
        run_child(["/nonexistent/x"], print)


def test_cancel_ends_the_child_and_what_it_started(tmp_path: Path) -> None:
    event = threading.Event()
    timer = threading.Timer(0.5, event.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(Cancelled, match="interrupted during post-processor 'x'"):
            run_child(sh(f"sleep 30 & echo $! > {tmp_path}/child; wait"), print,
                      cancel=Cancel(event, "post-processor 'x'"))  # fmt: skip
    finally:
        timer.cancel()
    assert time.monotonic() - started < 10
    assert gone(int((tmp_path / "child").read_text()))


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    event = threading.Event()
    pids: list[int] = []

    def started(proc: subprocess.Popen[str] | None) -> None:
        if proc is not None:
            pids.append(proc.pid)

    began = time.monotonic()
    with pytest.raises(Cancelled):
        run_child(sh("trap '' TERM; echo ready; sleep 30"), lambda _line: event.set(),
                  grace=0.5, cancel=Cancel(event, "x"), on_start=started)  # fmt: skip
    assert 0.5 <= time.monotonic() - began < 10  # SIGTERM was ignored: SIGKILL after 0.5 s
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)  # reaped


def test_on_start_sees_the_child_then_none() -> None:
    seen: list[object] = []
    run_child(sh("true"), print, on_start=seen.append)
    assert len(seen) == 2 and seen[0] is not None and seen[1] is None


def test_a_background_child_holding_the_output_is_ended(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(childproc, "DRAIN_SECONDS", 0.3)
    started = time.monotonic()
    done = run_child(sh(f"sleep 30 & echo $! > {tmp_path}/child; echo hi"), print)
    assert done.status == 0
    assert time.monotonic() - started < 5
    assert gone(int((tmp_path / "child").read_text()))


def test_end_kills_a_child_outside_a_group_by_its_pid() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        assert os.getpgid(proc.pid) != proc.pid
        end(proc)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
