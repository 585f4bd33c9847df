"""How a build talks to the user: Packer-style lines (`==> qemu.openbsd-76: Creating disk...`).

Steps use the three methods of `Ui` (say / message / error). Two optional extras,
reached through the helpers below so any Ui works:
  log_line(ui, text)         a detail for the build log only (HTTP requests, typed keys)
  with waiting(ui, text):    a long wait; on a terminal a live line shows the elapsed
                             time ("Waiting for the install to finish... 1m02s")
`BuildUi` is the real one: one colour per build, -timestamp-ui, -machine-readable,
a timestamped per-build log file, secrets masked everywhere.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TextIO

from packwrap.masking import mask


class Ui(Protocol):
    def say(self, message: str) -> None:
        """A step headline: `==> name: message`."""

    def message(self, message: str) -> None:
        """Detail under a headline: `    name: message`."""

    def error(self, message: str) -> None:
        """An error line (stderr on a terminal)."""


class Progress(Protocol):
    def tick(self) -> None: ...
    def done(self) -> None: ...


def log_line(ui: Ui, message: str) -> None:
    """A detail for the build log only (nothing on the terminal)."""
    fn = getattr(ui, "log", None)
    if fn is not None:
        fn(message)


@contextlib.contextmanager
def waiting(ui: Ui, message: str) -> Iterator[None]:
    """Show `message` with the elapsed time for the duration of the block."""
    start = time.monotonic()
    progress = getattr(ui, "progress", None)
    handle = progress(message) if progress else None
    if handle is None:
        ui.say(message + "...")
    try:
        yield
    finally:
        if handle is not None:
            handle.done()
        else:
            log_line(ui, f"{message}: {time.monotonic() - start:.1f}s")


class PlainUi:
    """Plain lines for one build; thread-safe so parallel builds do not interleave mid-line."""

    _lock = threading.Lock()

    def __init__(self, build_name: str, out: TextIO | None = None, err: TextIO | None = None):
        self.build_name = build_name
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def _write(self, stream: TextIO, text: str) -> None:
        with self._lock:
            stream.write(text + "\n")
            stream.flush()

    def say(self, message: str) -> None:
        self._write(self.out, f"==> {self.build_name}: {message}")

    def message(self, message: str) -> None:
        self._write(self.out, f"    {self.build_name}: {message}")

    def error(self, message: str) -> None:
        self._write(self.err, f"==> {self.build_name}: {message}")


# --- the real UI ---------------------------------------------------------------------

# Packer's build colours, in order: green, cyan, magenta, yellow, blue (bold).
COLOURS = ("1;32", "1;36", "1;35", "1;33", "1;34")
ERROR_COLOUR = "1;31"


def machine_escape(text: str) -> str:
    return text.replace(",", "%!(PACKER_COMMA)").replace("\r", "\\r").replace("\n", "\\n")


def safe_name(name: str) -> str:
    """A build name as a file name part ("b.qemu.x" stays, "a/b c" -> "a_b_c")."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def default_log_dir(template_dir: str | Path) -> Path:
    """Where build and console logs go unless $PACKWRAP_LOG_DIR says otherwise."""
    return Path(template_dir) / ".packwrap" / "logs"


def no_color(env: Mapping[str, str] | None = None) -> bool:
    """The standard NO_COLOR (https://no-color.org): set and not empty, no ANSI colour.
    (rich, used for fetch-iso's bar and typer's help, reads it by itself.)"""
    return bool((os.environ if env is None else env).get("NO_COLOR"))


class Terminal:
    """The shared output of all builds of one run: one lock, one live progress line."""

    def __init__(
        self,
        out: TextIO | None = None,
        err: TextIO | None = None,
        *,
        color: bool | None = None,
        timestamp: bool = False,
        machine: bool = False,
        env: Mapping[str, str] | None = None,
    ):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.isatty = bool(getattr(self.out, "isatty", lambda: False)())
        self.machine = machine
        if color is None:  # NO_COLOR overrides the terminal, not an explicit choice
            color = self.isatty and not no_color(env)
        self.color = color and not machine
        self.timestamp = timestamp
        self.live = self.isatty and not machine
        self.lock = threading.RLock()
        self._progress: dict[int, tuple[str, str, float]] = {}
        self._next_id = 0
        self._drawn = False
        self._ticker: threading.Thread | None = None

    # plain/colour line output
    def line(self, text: str, *, colour: str | None = None, stderr: bool = False) -> None:
        if self.timestamp and not self.machine:
            text = f"{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}: {text}"
        if self.color and colour:
            text = f"\x1b[{colour}m{text}\x1b[0m"
        stream = self.err if stderr and not self.machine else self.out
        with self.lock:
            self._clear()
            stream.write(text + "\n")
            stream.flush()
            self._draw()

    def emit(self, kind: str, text: str, *, colour: str | None = None) -> None:
        """A `ui` line of this kind (say, message, error): machine-readable or plain/coloured
        (errors on stderr)."""
        if self.machine:
            self.machine_line("", "ui", kind, text)
        else:
            self.line(text, colour=colour, stderr=kind == "error")

    def machine_line(self, target: str, kind: str, *fields: str) -> None:
        data = ",".join(machine_escape(f) for f in fields)
        with self.lock:
            self.out.write(f"{int(time.time())},{target},{kind},{data}\n")
            self.out.flush()

    # live progress line (terminal only)
    def start_progress(self, prefix: str, message: str) -> int:
        with self.lock:
            self._next_id += 1
            pid = self._next_id
            self._progress[pid] = (prefix, message, time.monotonic())
            if self._ticker is None or not self._ticker.is_alive():
                self._ticker = threading.Thread(target=self._tick_loop, daemon=True)
                self._ticker.start()
            self._clear()
            self._draw()
            return pid

    def stop_progress(self, pid: int) -> float:
        with self.lock:
            item = self._progress.pop(pid, None)
            self._clear()
            self._draw()
        return time.monotonic() - item[2] if item else 0.0

    def _tick_loop(self) -> None:
        while True:
            time.sleep(1.0)
            with self.lock:
                if not self._progress:
                    self._ticker = None
                    return
                self._clear()
                self._draw()

    def _clear(self) -> None:
        if self._drawn:
            self.out.write("\r\x1b[K")
            self._drawn = False

    def _draw(self) -> None:
        if not self.live or not self._progress:
            return
        from packwrap.durations import format_duration

        now = time.monotonic()
        parts = [
            f"{prefix}: {message}... {format_duration(now - start)}"
            for prefix, message, start in self._progress.values()
        ]
        width = shutil.get_terminal_size((100, 20)).columns - 1
        text = " | ".join(parts)
        if len(text) > width:
            text = text[: max(0, width - 1)] + "…"
        self.out.write(text)
        self.out.flush()
        self._drawn = True


class _ProgressHandle:
    def __init__(self, ui: BuildUi, message: str):
        self.ui = ui
        self.message = message
        self.start = time.monotonic()
        self.id: int | None = None
        self.closed = False
        term = ui.terminal
        if term.live:
            self.id = term.start_progress(ui.build_name, ui.mask(message))
        else:
            ui.say(message + "...")

    def tick(self) -> None:
        pass  # the terminal's ticker redraws once a second

    def done(self) -> None:
        if self.closed:
            return
        self.closed = True
        elapsed = time.monotonic() - self.start
        if self.id is not None:
            self.ui.terminal.stop_progress(self.id)
            if elapsed >= 2.0:  # the live line is gone: leave a record of a long wait
                from packwrap.durations import format_duration

                self.ui.message(f"{self.message}: {format_duration(elapsed)}")
        self.ui.log(f"{self.message}: done after {elapsed:.1f}s")


class BuildUi:
    """The UI of one build: prefixed, coloured lines; every line also in the build log."""

    def __init__(
        self,
        build_name: str,
        terminal: Terminal,
        *,
        colour: str | None = None,
        log_path: str | Path | None = None,
        secrets: Iterable[str] = (),
    ):
        self.build_name = build_name
        self.terminal = terminal
        self.colour = colour or COLOURS[0]
        self.secrets: set[str] = {s for s in secrets if s}
        self.log_path = Path(log_path) if log_path else None
        self._log: TextIO | None = None
        self._log_lock = threading.Lock()
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115

    def mask(self, text: str) -> str:
        return mask(text, self.secrets)

    def add_secret(self, secret: str) -> None:
        if secret:
            self.secrets.add(secret)

    def log(self, message: str, *, kind: str = "detail") -> None:
        if self._log is None:
            return
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        text = self.mask(message)
        with self._log_lock:
            if self._log.closed:
                return
            for line in text.splitlines() or [""]:
                self._log.write(f"{stamp} {kind:<7} {line}\n")
            self._log.flush()

    def emit(self, kind: str, text: str, *, colour: str | None = None) -> None:
        """`text` as is (masked) on the terminal and in the build log."""
        text = self.mask(text)
        self.log(text, kind=kind)
        self.terminal.emit(kind, text, colour=colour or self.colour)

    def say(self, message: str) -> None:
        self.emit("say", f"==> {self.build_name}: {message}")

    def message(self, message: str) -> None:
        self.emit("message", f"    {self.build_name}: {message}")

    def error(self, message: str) -> None:
        self.emit("error", f"==> {self.build_name}: {message}", colour=ERROR_COLOUR)

    def progress(self, message: str) -> _ProgressHandle:
        return _ProgressHandle(self, message)

    def close(self) -> None:
        with self._log_lock:
            if self._log is not None and not self._log.closed:
                self._log.close()
