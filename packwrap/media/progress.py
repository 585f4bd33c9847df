"""Download progress: a rich bar on a terminal, sparse log lines otherwise, or nothing.

All progress goes to stderr so stdout carries only the result lines.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:  # rich loads only when a progress bar is drawn
    import rich.progress


class Progress(Protocol):
    def start(self, name: str, total: int | None, done: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def note(self, message: str) -> None: ...
    def finish(self) -> None: ...


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _eta(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


class NullProgress:
    """--quiet: say nothing (errors still reach stderr through the CLI)."""

    def start(self, name: str, total: int | None, done: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def finish(self) -> None:
        pass


class LogProgress:
    """Not a terminal: a line at start, every 25 % (at most one per 5 s), and at the end."""

    def __init__(self, stream: TextIO | None = None, step: float = 0.25, min_gap: float = 5.0):
        self.stream = stream or sys.stderr
        self.step, self.min_gap = step, min_gap
        self.name, self.done = "", 0
        self.total: int | None = None
        self.t0 = self.last = 0.0
        self.start_done = 0
        self.next_mark = step

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def start(self, name: str, total: int | None, done: int) -> None:
        self.name, self.total, self.done, self.start_done = name, total, done, done
        self.t0 = self.last = time.monotonic()
        size = human_bytes(total) if total else "unknown size"
        resumed = f", resuming at {human_bytes(done)}" if done else ""
        self._line(f"downloading {name} ({size}{resumed})")
        if total:
            self.next_mark = (int(done / total / self.step) + 1) * self.step

    def _rate(self, now: float) -> float:
        return (self.done - self.start_done) / max(now - self.t0, 1e-6)

    def advance(self, n: int) -> None:
        self.done += n
        if not self.total:
            return
        frac = self.done / self.total
        now = time.monotonic()
        if frac >= self.next_mark and frac < 1 and now - self.last >= self.min_gap:
            rate = self._rate(now)
            eta = (self.total - self.done) / rate if rate else 0
            self._line(
                f"  {self.name}: {frac:4.0%} of {human_bytes(self.total)}, "
                f"{human_bytes(rate)}/s, ETA {_eta(eta)}"
            )
            self.last = now
        while frac >= self.next_mark:
            self.next_mark += self.step

    def note(self, message: str) -> None:
        self._line(message)

    def finish(self) -> None:
        if self.total and self.done < self.total:
            return  # cut short: the caller reports why
        now = time.monotonic()
        self._line(
            f"  {self.name}: {human_bytes(self.done)} in {now - self.t0:.1f} s "
            f"({human_bytes(self._rate(now))}/s)"
        )


class RichProgress:
    """A terminal bar: size, rate and ETA (rich is imported only here)."""

    def __init__(self, stream: TextIO | None = None):
        from rich.console import Console

        self.console = Console(file=stream or sys.stderr)
        self._progress: rich.progress.Progress | None = None
        self._task: rich.progress.TaskID | None = None

    def start(self, name: str, total: int | None, done: int) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.finish()
        progress = self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        progress.start()
        self._task = progress.add_task(name, total=total, completed=done)

    def advance(self, n: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def make_progress(quiet: bool, stream: TextIO | None = None) -> Progress:
    stream = stream or sys.stderr
    if quiet:
        return NullProgress()
    if stream.isatty():
        return RichProgress(stream)
    return LogProgress(stream)
