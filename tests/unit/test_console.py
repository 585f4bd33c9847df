"""SerialConsole against a real pty pair, with a thread playing the guest on the master side."""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from pathlib import Path

import pytest

from packwrap.build.console import (
    ConsoleEOF,
    ConsoleError,
    ConsoleTimeout,
    SerialConsole,
    clean_echo,
    escape_tilde,
)
from packwrap.errors import Cancelled
from tests.state_support import make_state


class Guest(threading.Thread):
    """A cooked-mode tty line discipline in miniature: echoes, ^U kills, CR ends a line."""

    def __init__(self, fd: int, *, echo: bool = True, drop_once: str | None = None):
        super().__init__(daemon=True)
        self.fd = fd
        self.echo = echo
        self.drop_once = drop_once
        self.lines: list[str] = []
        self.raw = bytearray()
        self.stop = False
        self._line: list[str] = []

    def say(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def run(self) -> None:
        import select

        while not self.stop:
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.fd, 1024)
            except OSError:
                return
            self.raw += data
            for ch in data.decode():
                if ch == "\r":
                    self.lines.append("".join(self._line))
                    self._line = []
                    if self.echo:
                        self.say("\r\n")
                elif ch == "\x15":
                    n = len(self._line)
                    self._line = []
                    if self.echo:
                        self.say("\b \b" * n)
                elif ch == "\x7f":
                    if self._line:
                        self._line.pop()
                        if self.echo:
                            self.say("\b \b")
                elif self.drop_once and ch == self.drop_once:
                    self.drop_once = None  # lost on the wire: neither echoed nor kept
                else:
                    self._line.append(ch)
                    if self.echo:
                        self.say(ch)


@pytest.fixture
def pty_pair(tmp_path: Path):
    master, slave = os.openpty()
    path = os.ttyname(slave)
    consoles: list[SerialConsole] = []
    guests: list[Guest] = []

    def make(**guest_kw):
        guest = Guest(master, **guest_kw)
        guest.start()
        guests.append(guest)
        console = SerialConsole(path, tmp_path / "console.log")
        consoles.append(console)
        return console, guest

    yield make
    for g in guests:
        g.stop = True
        g.join(2)
    for c in consoles:
        c.close()
    for fd in (master, slave):
        with contextlib.suppress(OSError):
            os.close(fd)


def keys(text: str) -> list[bytes]:
    return [c.encode() for c in text]


def test_expect_literal_regex_and_cursor(pty_pair, tmp_path: Path) -> None:
    console, guest = pty_pair()
    guest.say("Welcome (I)nstall, (U)pgrade, (A)utoinstall or (S)hell? ")
    m = console.expect("(A)utoinstall or (S)hell?", 5)
    assert m.group(0) == "(A)utoinstall or (S)hell?"
    guest.say("\r\nResponse file location? [http://x/install.conf] ")
    m = console.expect(re.compile(r"location\? \[(.*?)\]"), 5)
    assert m.group(1) == "http://x/install.conf"
    # the cursor moved past the first prompt: it does not match again
    with pytest.raises(ConsoleTimeout) as info:
        console.expect("(I)nstall", 0.3)
    assert "timed out after 0.3s waiting for '(I)nstall'" in str(info.value)
    assert any("Response file location?" in line for line in info.value.details)
    console.close()
    assert "Welcome (I)nstall" in (tmp_path / "console.log").read_text()


def test_expect_fails_fast_on_eof(tmp_path: Path) -> None:
    master, slave = os.openpty()
    console = SerialConsole(os.ttyname(slave), tmp_path / "c.log")
    os.close(slave)
    os.write(master, b"INSTALL FAILED: no root password\r\n")
    time.sleep(0.2)
    os.close(master)  # the VM is gone
    start = time.monotonic()
    with pytest.raises(ConsoleEOF) as info:
        console.expect("CONGRATULATIONS!", 30)
    assert time.monotonic() - start < 2
    assert info.value.details[-1] == "INSTALL FAILED: no root password"
    assert console.eof
    console.close()


def test_expect_cancel(pty_pair) -> None:
    console, _ = pty_pair()
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    start = time.monotonic()
    with pytest.raises(Cancelled):
        console.expect("never", 30, cancel)
    assert time.monotonic() - start < 2


def test_type_line_echo_ok(pty_pair) -> None:
    console, guest = pty_pair()
    logs: list[str] = []
    assert console.type_line(
        keys("http://10.0.2.100/install.conf"),
        "http://10.0.2.100/install.conf",
        sleep=time.sleep,
        log=logs.append,
    )
    time.sleep(0.2)
    assert guest.lines == ["http://10.0.2.100/install.conf"]
    assert logs == []


def test_type_line_dropped_key_is_retyped(pty_pair) -> None:
    console, guest = pty_pair(drop_once="o")
    logs: list[str] = []
    console.type_line(keys("hello"), "hello", sleep=time.sleep, log=logs.append, echo_quiet=0.1)
    time.sleep(0.2)
    assert guest.lines == ["hello"]
    assert len(logs) == 1
    assert "echo mismatch: sent 'hello', guest echoed 'hell'" in logs[0]
    assert "try 2/3" in logs[0]
    assert b"\x15" in guest.raw  # the line was killed before the retype


def test_type_line_gives_up_after_three_tries(pty_pair) -> None:
    console, guest = pty_pair()
    guest.drop_once = None

    # a guest that always loses the "x"
    def run_lossy():
        while not guest.stop:
            guest.drop_once = "x"
            time.sleep(0.01)

    t = threading.Thread(target=run_lossy, daemon=True)
    t.start()
    with pytest.raises(ConsoleError, match="typed 'box' 3 times but the guest echoed 'bo'"):
        console.type_line(keys("box"), "box", sleep=time.sleep, echo_timeout=2, echo_quiet=0.1)
    assert guest.lines == []  # Enter was never pressed on a wrong line
    guest.stop = True


def test_non_echoing_guest_is_detected(pty_pair) -> None:
    console, guest = pty_pair(echo=False)
    logs: list[str] = []
    t0 = time.monotonic()
    echoes = console.type_line(
        keys("secret"), "secret", sleep=time.sleep, log=logs.append, echo_timeout=0.5
    )
    assert echoes is False
    assert time.monotonic() - t0 < 4
    time.sleep(0.2)
    assert guest.lines == ["secret"]  # the retype after ^U leaves one clean line
    assert "retyping once" in logs[0]  # keys may have been typed before the guest read
    assert "does not echo" in logs[-1]


def test_secret_line_not_checked_and_masked(pty_pair, tmp_path: Path) -> None:
    console, guest = pty_pair()
    console.add_secret("hunter2")
    console.type_line(keys("hunter2"), "hunter2", sleep=time.sleep, secret=True)
    time.sleep(0.3)
    assert guest.lines == ["hunter2"]
    console.close()
    log = (tmp_path / "console.log").read_text()
    assert "hunter2" not in log
    assert "<sensitive>" in log
    assert all("hunter2" not in line for line in console.tail())


def test_key_interval_is_honoured(pty_pair) -> None:
    console, guest = pty_pair()
    sleeps: list[float] = []
    console.type_line(
        keys("abc"), "abc", sleep=lambda s: (sleeps.append(s), time.sleep(0.001)), interval=0.05
    )
    assert sleeps.count(0.05) == 3


def test_cu_escape() -> None:
    assert escape_tilde(b"~.") == b"~~."
    assert escape_tilde(b"a~b\r~x\n~") == b"a~b\r~~x\n~~"
    assert escape_tilde(b"~", at_line_start=False) == b"~"


def test_cu_escape_on_write(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        console = SerialConsole(os.ttyname(slave), None)
        console.cu_escape = True
        console.write(b"~x\r~y")
        time.sleep(0.1)
        assert os.read(master, 100) == b"~~x\r~~y"
        console.close()
    finally:
        os.close(master)
        os.close(slave)


def test_clean_echo() -> None:
    assert clean_echo("\x1b[1mhel\x1b[0mlo\r\n") == "hello"
    assert clean_echo("helx\b \blo") == "hello"
    assert clean_echo("a\x07b\x7fc") == "ac"


def test_fd_input_and_tail(tmp_path: Path) -> None:
    master, slave = os.openpty()
    console = SerialConsole(os.dup(slave), tmp_path / "c.log")
    try:
        for i in range(30):
            os.write(master, f"line {i}\r\n".encode())
        console.expect("line 29", 5)
        assert console.tail(3) == ["line 27", "line 28", "line 29"]
    finally:
        console.close()
        os.close(master)
        os.close(slave)


# --- StepTypeBootCommand -------------------------------------------------------------


def test_boot_command_step_waits_for_prompts_and_types(pty_pair, tmp_path: Path) -> None:
    from packwrap.build.common_options import BOOT_CHECKS, BOOT_OPTIONS
    from packwrap.build.steps.boot_command import StepTypeBootCommand
    from packwrap.config.schema import Schema, SourceBody

    config, problems, _ = Schema(BOOT_OPTIONS, BOOT_CHECKS).prepare(
        SourceBody(
            {
                "boot_command": [
                    "A<enter>",
                    "http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.conf<enter>",
                    "hunter2<enter>",
                ],
                "boot_expect": ["(S)hell? ", "Response file location?", "Password"],
                "boot_expect_timeout": "5s",
                "boot_secret_elements": [2],
            }
        )
    )
    assert problems == []
    console, guest = pty_pair(drop_once="/")

    state = make_state(config)
    state.data.update(console=console, http_ip="10.0.2.100", http_port=8123, vm_name="t")

    def installer():
        guest.say("Welcome\r\n(I)nstall, (U)pgrade, (A)utoinstall or (S)hell? ")
        while len(guest.lines) < 1:
            time.sleep(0.01)
        guest.say("Response file location? [http://x/install.conf] ")
        while len(guest.lines) < 2:
            time.sleep(0.01)
        guest.echo = False  # passwords are not echoed
        guest.say("Password for root account? ")

    threading.Thread(target=installer, daemon=True).start()
    t0 = time.monotonic()
    StepTypeBootCommand().run(state)
    time.sleep(0.2)
    assert guest.lines == ["A", "http://10.0.2.100:8123/install.conf", "hunter2"]
    assert time.monotonic() - t0 < 5  # boot_wait defaults to 0 when boot_expect[0] is set
    logs = "\n".join(state.ui.lines + state.ui.logs)  # what the terminal and the log show
    assert "echo mismatch" in logs and "retyping" in logs
    assert "hunter2" not in logs
    console.close()
    assert "hunter2" not in (tmp_path / "console.log").read_text()


def test_boot_command_expect_timeout_names_the_prompt(pty_pair) -> None:
    from packwrap.build.steps.boot_command import StepTypeBootCommand
    from packwrap.config import Config

    console, guest = pty_pair()
    guest.say("boot> ")
    cfg = Config(
        boot_command=["x<enter>"],
        boot_expect=["(S)hell?"],
        boot_expect_timeout=0.3,
        boot_wait=None,
        boot_echo_check=True,
        boot_secret_elements=[],
    )

    state = make_state(cfg)
    state.data["console"] = console
    with pytest.raises(ConsoleTimeout) as info:
        StepTypeBootCommand().run(state)
    assert "waiting for '(S)hell?'" in str(info.value)
    assert info.value.details == ["boot>"]


def test_write_with_delay(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        console = SerialConsole(os.ttyname(slave), None)
        pauses: list[float] = []
        console.write(b"abc", delay=0.01, sleep=pauses.append)
        time.sleep(0.1)
        assert os.read(master, 100) == b"abc"
        assert pauses == [0.01, 0.01, 0.01]
        console.close()
    finally:
        os.close(master)
        os.close(slave)


def test_console_log_path_is_per_build(tmp_path: Path) -> None:
    from packwrap.build.console import console_log_path
    from packwrap.build.state import State
    from packwrap.config import Config

    a = State("b1.qemu.x", "qemu", "x", Config(), None, template_dir=tmp_path)
    b = State("qemu.y", "qemu", "y", Config(), None, template_dir=tmp_path)
    b.data["log_dir"] = str(tmp_path / "logs")
    assert console_log_path(a) == tmp_path / ".packwrap" / "logs" / "packwrap-b1.qemu.x.console.log"
    assert console_log_path(b, "qemu") == tmp_path / "logs" / "packwrap-qemu.y.qemu.log"
    assert (tmp_path / "logs").is_dir()


def test_boot_command_waits_inside_a_line(pty_pair) -> None:
    from packwrap.build.steps.boot_command import StepTypeBootCommand
    from packwrap.config import Config

    console, guest = pty_pair()
    cfg = Config(
        boot_command=["ab<wait0.05s>cd<enter>", "<esc>x<enter>"],
        boot_expect=[],
        boot_wait=-1.0,
        boot_echo_check=True,
        boot_secret_elements=[],
    )

    state = make_state(cfg)
    state.data["console"] = console
    sleeps: list[float] = []
    real_sleep = state.sleep
    state.sleep = lambda s: (sleeps.append(s), real_sleep(s))  # type: ignore[method-assign]
    StepTypeBootCommand().run(state)
    time.sleep(0.2)
    assert guest.raw == b"ab" + b"cd\r" + b"\x1bx\r"
    assert 0.05 in sleeps
    assert guest.lines == ["abcd", "\x1bx"]
