"""The guest's serial console: capture everything it prints, wait for text, type keys.

A reader thread copies every byte into an in-memory buffer and (masked, line by
line) into the console log. `expect` waits for a literal or a regex with a
timeout and Ctrl-C, and fails at once when the console reaches EOF (the VM
exited: a pty slave then reads b"" forever, or EIO). `type_line` closes the loop
on typing: it compares the guest's echo of a line with what was sent before
pressing Enter, and erases (^U) and retypes on a mismatch, a bounded number of
times.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import select
import termios
import threading
import time
import tty
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.build.ui import default_log_dir, safe_name
from packwrap.durations import format_duration
from packwrap.errors import Cancelled, PackwrapError
from packwrap.masking import mask, secret_prefix_at_end

if TYPE_CHECKING:
    from packwrap.build.state import State
    from packwrap.build.ui import Ui

_KEEP = 1 << 20  # bytes of console output kept in memory
_ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[@-Z\\-_])")
KILL_LINE = b"\x15"  # ^U: the tty's default VKILL on OpenBSD and Linux


class ConsoleError(PackwrapError):
    """A console failure; `details` are the console's last lines (shown under the error)."""

    def __init__(self, message: str, details: Iterable[str] = ()):
        super().__init__(message)
        self.details = list(details)


class BuildFailed(ConsoleError):
    """A failed build told with the guest's last words: the console's last lines are the
    details, and the last few also close the one-line message (for logs and summaries)."""

    def __init__(self, message: str, details: Iterable[str] = ()):
        details = list(details)
        lines = [ln.strip() for ln in details if ln.strip()]
        tail = " | ".join(lines[-4:])
        super().__init__(f"{message}; console: {tail}" if tail else message, details)


def console_tail(console: SerialConsole | None, n: int = 15) -> list[str]:
    """The console's last `n` lines, or none when the build has no console."""
    return console.tail(n) if console is not None else []


class ConsoleTimeout(ConsoleError):
    pass


class ConsoleEOF(ConsoleError):
    pass


def escape_tilde(data: bytes, *, at_line_start: bool = True) -> bytes:
    """Double a `~` at the start of a line so cu(1) sends it instead of taking it as its
    escape character (needed only when the console is a cu(1) session, e.g. `vmctl console`)."""
    out = bytearray()
    start = at_line_start
    for b in data:
        if b == 0x7E and start:
            out += b"~~"
        else:
            out.append(b)
        start = b in (0x0D, 0x0A)
    return bytes(out)


def clean_echo(raw: str) -> str:
    """What a terminal line shows: ANSI sequences, CR/LF and control noise removed,
    backspace/DEL applied."""
    text = _ANSI.sub("", raw)
    out: list[str] = []
    for ch in text:
        if ch in "\b\x7f":
            if out:
                out.pop()
        elif ch in "\r\n" or (ord(ch) < 0x20 and ch != "\t"):
            continue
        else:
            out.append(ch)
    return "".join(out)


class SerialConsole:
    """A serial console on a pty path (opened O_RDWR|O_NOCTTY) or an fd (which it then owns).

    `cu_escape=True` doubles `~` at line starts on write (console reached through cu(1)).
    `secrets` are masked in the log, in tail() and in error messages; add more with
    add_secret().
    """

    def __init__(
        self,
        path_or_fd: str | os.PathLike[str] | int,
        log_path: str | os.PathLike[str] | None,
        *,
        ui: Ui | None = None,
        secrets: Iterable[str] = (),
        cu_escape: bool = False,
    ):
        if isinstance(path_or_fd, int):
            self.fd = path_or_fd
            self.name = f"fd {path_or_fd}"
        else:
            self.name = os.fspath(path_or_fd)
            self.fd = os.open(self.name, os.O_RDWR | os.O_NOCTTY)
        # QEMU sets its pty raw itself; keep setraw as a safeguard (no echo, no CR mangling).
        with contextlib.suppress(OSError):
            if os.isatty(self.fd):
                # TCSANOW, not the default TCSAFLUSH: keep what the guest already printed.
                tty.setraw(self.fd, termios.TCSANOW)
        self.ui = ui
        self.cu_escape = cu_escape
        # Set by the builder: the VM's own words when it exited (e.g. QEMU's last stderr
        # lines), so a console that closes says why, not only that it closed.
        self.exit_reason: Callable[[], str | None] = lambda: None
        # Masked: our own secrets plus the build UI's (the template's sensitive values).
        self.secrets: set[str] = {s for s in secrets if s} | set(getattr(ui, "secrets", ()))
        self._buf = bytearray()
        self._base = 0  # absolute offset of _buf[0]
        self._cursor = 0  # absolute offset where the next expect() starts searching
        self._cond = threading.Condition()
        self._eof = False
        self._closing = False
        self._at_line_start = True
        self._log = open(log_path, "ab") if log_path else None  # noqa: SIM115
        self._log_pending = bytearray()
        self._last_data = time.monotonic()
        self._thread = threading.Thread(target=self._reader, name="serial-console", daemon=True)
        self._thread.start()

    # -- reading ----------------------------------------------------------------------

    def _reader(self) -> None:
        poller = select.poll()  # not select(): any fd number works
        poller.register(self.fd, select.POLLIN)
        while not self._closing:
            try:
                ready = poller.poll(200)
            except OSError:
                break
            if not ready:
                self._flush_log(partial=True, hold_secret_prefix=True)
                continue
            try:
                data = os.read(self.fd, 4096)
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF):
                    data = b""
                elif exc.errno in (errno.EAGAIN, errno.EINTR):
                    continue
                else:
                    data = b""
            if not data:
                break
            with self._cond:
                self._buf += data
                if len(self._buf) > _KEEP:
                    drop = len(self._buf) - _KEEP
                    del self._buf[:drop]
                    self._base += drop
                self._last_data = time.monotonic()
                self._cond.notify_all()
            self._log_pending += data
            self._flush_log(partial=False)
        with self._cond:
            self._eof = True
            self._cond.notify_all()
        self._flush_log(partial=True)

    def _flush_log(self, *, partial: bool, hold_secret_prefix: bool = False) -> None:
        """Write complete lines (and, when idle, the partial rest) to the log, masked."""
        if not self._log or not self._log_pending:
            return
        cut = len(self._log_pending) if partial else self._log_pending.rfind(b"\n") + 1
        if hold_secret_prefix and self.secrets:
            # A secret echoed slowly arrives in pieces: keep back what may be its start,
            # or the pieces land in the log unmasked.
            cut -= secret_prefix_at_end(bytes(self._log_pending[:cut]), self.secrets)
        if cut <= 0:
            return
        chunk = bytes(self._log_pending[:cut])
        del self._log_pending[:cut]
        if self.secrets:
            text = mask(chunk.decode("utf-8", "replace"), self.secrets)
            chunk = text.encode("utf-8")
        try:
            self._log.write(chunk)
            self._log.flush()
        except (OSError, ValueError):
            pass

    @property
    def eof(self) -> bool:
        return self._eof

    def add_secret(self, secret: str) -> None:
        if secret:
            self.secrets.add(secret)

    def mask(self, text: str) -> str:
        return mask(text, self.secrets)

    def mark(self) -> int:
        """The absolute offset of the end of what was read so far."""
        with self._cond:
            return self._base + len(self._buf)

    def text_since(self, mark: int) -> str:
        with self._cond:
            start = max(0, mark - self._base)
            return bytes(self._buf[start:]).decode("utf-8", "replace")

    def text(self) -> str:
        """All console output kept in memory (the last MiB), unmasked."""
        return self.text_since(0)

    def tail(self, n: int = 15) -> list[str]:
        """The last n non-empty lines, ANSI-stripped and masked (for error messages)."""
        with self._cond:
            raw = bytes(self._buf[-16384:]).decode("utf-8", "replace")
        lines = [_ANSI.sub("", ln).replace("\r", "").rstrip() for ln in raw.split("\n")]
        lines = [self.mask(ln) for ln in lines if ln.strip()]
        return lines[-n:]

    def skip(self) -> None:
        """Move the expect cursor to the end: later expects see only new output."""
        with self._cond:
            self._cursor = self._base + len(self._buf)

    def expect(
        self,
        pattern: str | re.Pattern[str],
        timeout: float,
        cancel_event: threading.Event | None = None,
        *,
        what: str | None = None,
    ) -> re.Match[str]:
        """Wait for `pattern` (a literal str or a compiled regex) in the output after the
        cursor; on success the cursor moves past the match. Raises ConsoleTimeout,
        ConsoleEOF (VM exited) or Cancelled; errors carry the console tail."""
        rx = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        label = what or (pattern.pattern if isinstance(pattern, re.Pattern) else pattern)
        start = time.monotonic()
        deadline = start + timeout
        progress = _Progress(self.ui, f"Waiting for {self.mask(label)!r} on the console")
        try:
            while True:
                with self._cond:
                    begin = max(0, self._cursor - self._base)
                    text = bytes(self._buf[begin:]).decode("utf-8", "replace")
                    m = rx.search(text)
                    if m:
                        consumed = len(text[: m.end()].encode("utf-8", "replace"))
                        self._cursor = self._base + begin + consumed
                        return m
                    if self._eof:
                        raise ConsoleEOF(
                            self._closed(f"while waiting for {self.mask(label)!r}"),
                            self.tail(),
                        )
                    now = time.monotonic()
                    if now >= deadline:
                        raise ConsoleTimeout(
                            f"timed out after {format_duration(timeout)} waiting for "
                            f"{self.mask(label)!r} on the serial console",
                            self.tail(),
                        )
                    self._cond.wait(min(0.1, deadline - now))
                if cancel_event is not None and cancel_event.is_set():
                    raise Cancelled(f"interrupted while waiting for {self.mask(label)!r}")
                progress.tick()
        finally:
            progress.done()

    def wait_quiet(self, quiet: float, timeout: float) -> None:
        """Return once nothing arrived for `quiet` seconds (or after `timeout`)."""
        deadline = time.monotonic() + timeout
        while not self._eof:
            now = time.monotonic()
            idle = now - self._last_data
            if idle >= quiet or now >= deadline:
                return
            time.sleep(min(quiet - idle, deadline - now, 0.05))

    # -- writing ----------------------------------------------------------------------

    def write(
        self, data: bytes, *, delay: float = 0.0, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        """Send bytes to the guest; with `delay`, one byte at a time with that pause."""
        if delay > 0:
            for i in range(len(data)):
                self.write(data[i : i + 1])
                sleep(delay)
            return
        if self.cu_escape:
            data = escape_tilde(data, at_line_start=self._at_line_start)
        if data:
            self._at_line_start = data[-1:] in (b"\r", b"\n")
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    time.sleep(0.01)
                    continue
                raise ConsoleEOF(
                    self._closed(f"cannot write to the console ({exc.strerror})", prefix=""),
                    self.tail(),
                ) from None
            view = view[n:]

    def _closed(self, what: str, prefix: str = "the console closed (the VM exited) ") -> str:
        reason = self.exit_reason()
        return f"{prefix}{what}" + (f": {reason}" if reason else "")

    def type_line(
        self,
        keys: list[bytes],
        text: str,
        *,
        sleep: Callable[[float], None],
        interval: float = 0.0,
        echo_check: bool = True,
        tries: int = 3,
        echo_timeout: float = 5.0,
        echo_quiet: float = 0.5,
        log: Callable[[str], None] | None = None,
        secret: bool = False,
        enter: bytes = b"\r",
    ) -> bool:
        """Type `keys` (one bytes item per key, `text` their printable form), check the
        echo, then send `enter` (b"" for none). Returns False if the guest proved not to
        echo at all (the caller may stop checking). Raises ConsoleError after `tries`
        mismatches."""
        echoes = True
        for attempt in range(1, tries + 1):
            mark = self.mark()
            for key in keys:
                self.write(key)
                if interval:
                    sleep(interval)
            if not echo_check or secret or not text:
                break
            seen = self._await_echo(mark, text, echo_timeout, echo_quiet, sleep)
            if text in seen:
                break
            if not seen:
                if attempt == 1:
                    # Nothing at all: the guest may not have been reading yet (keys typed
                    # before it opened the line are lost). Retype once before concluding.
                    if log:
                        log("no echo from the guest; erasing the line and retyping once")
                    self.write(KILL_LINE)
                    self.wait_quiet(0.2, 1.0)
                    continue
                echoes = False  # still nothing: this guest does not echo
                if log:
                    log("the guest does not echo typed keys; echo check off from here")
                break
            shown = self.mask(seen[-len(text) - 20 :])
            if attempt == tries:
                raise ConsoleError(
                    f"typed {self.mask(text)!r} {tries} times but the guest echoed "
                    f"{shown!r}: keys are being lost on the serial console (if this guest "
                    "does not echo what it receives, set boot_echo_check = false)",
                    self.tail(),
                )
            if log:
                log(
                    f"echo mismatch: sent {self.mask(text)!r}, guest echoed {shown!r}; "
                    f"erasing the line and retyping (try {attempt + 1}/{tries})"
                )
            self.write(KILL_LINE)
            self.wait_quiet(0.2, 1.0)
        if enter:
            with self._cond:
                self._cursor = self._base + len(self._buf)
            self.write(enter)
        return echoes

    def _await_echo(
        self,
        mark: int,
        text: str,
        timeout: float,
        quiet_for: float,
        sleep: Callable[[float], None],
    ) -> str:
        deadline = time.monotonic() + timeout
        while True:
            seen = clean_echo(self.text_since(mark))
            if text in seen or self._eof:
                return seen
            now = time.monotonic()
            quiet = now - self._last_data
            # Everything that could be echoed is in, and it stopped coming: a mismatch.
            if (len(seen) >= len(text) and quiet >= min(0.3, quiet_for)) or now >= deadline:
                return seen
            if seen and quiet >= quiet_for:
                # A partial echo that stopped: a key was dropped (a slow guest costs at
                # worst one harmless ^U + retype).
                return seen
            sleep(0.02)

    # -- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._thread.join(timeout=2)
        with contextlib.suppress(OSError):
            os.close(self.fd)
        with self._cond:
            self._eof = True
            self._cond.notify_all()
        self._flush_log(partial=True)
        if self._log:
            with contextlib.suppress(OSError):
                self._log.close()

    def __enter__(self) -> SerialConsole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Progress:
    """Elapsed time on the UI during a long wait (if the UI supports it)."""

    def __init__(self, ui: Ui | None, message: str):
        self.handle = None
        if ui is not None and hasattr(ui, "progress"):
            self.handle = ui.progress(message)

    def tick(self) -> None:
        if self.handle is not None:
            self.handle.tick()

    def done(self) -> None:
        if self.handle is not None:
            self.handle.done()


def open_log(path: str | os.PathLike[str]) -> Path:
    """Create the directory of a console log; returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def console_log_path(state: State, suffix: str = "console") -> Path:
    """`<log dir>/packwrap-<build>.<suffix>.log`, next to the build log: named by build, so
    parallel builds of one template (same vm_name) never share a console log."""
    base = state.data.get("log_dir") or default_log_dir(state.template_dir)
    return open_log(Path(base) / f"packwrap-{safe_name(state.build_name)}.{suffix}.log")
