"""BuildUi / Terminal: Packer's line formats, colours, -timestamp-ui, -machine-readable,
the build log, masking, and the live progress line on a terminal."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest

from packwrap.build.ui import BuildUi, PlainUi, Terminal, log_line, machine_escape, waiting


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_without_terminal(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    ui = BuildUi("qemu.t", Terminal(out, err), log_path=tmp_path / "b.log")
    ui.say("Creating disk...")
    ui.message("detail")
    ui.error("boom")
    log_line(ui, "only in the log")
    ui.close()
    assert out.getvalue() == "==> qemu.t: Creating disk...\n    qemu.t: detail\n"
    assert err.getvalue() == "==> qemu.t: boom\n"
    log = (tmp_path / "b.log").read_text().splitlines()
    assert len(log) == 4
    assert re.match(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z say +==> qemu.t: Creating disk", log[0]
    )
    assert log[3].endswith("detail  only in the log")


def test_colour_per_build_on_a_terminal() -> None:
    out = Tty()
    term = Terminal(out, out, env={})
    BuildUi("a", term, colour="1;32").say("x")
    BuildUi("b", term, colour="1;36").say("y")
    assert out.getvalue() == "\x1b[1;32m==> a: x\x1b[0m\n\x1b[1;36m==> b: y\x1b[0m\n"


@pytest.mark.parametrize(
    ("env", "coloured"), [({"NO_COLOR": "1"}, False), ({"NO_COLOR": ""}, True), ({}, True)]
)
def test_no_color_env_turns_colour_off_on_a_terminal(env: dict, coloured: bool) -> None:
    """https://no-color.org: NO_COLOR set and not empty means no ANSI colour at all."""
    out = Tty()
    BuildUi("a", Terminal(out, out, env=env), colour="1;32").error("x")
    assert ("\x1b[" in out.getvalue()) is coloured
    assert "==> a: x" in out.getvalue()


def test_no_color_env_is_passed_on_to_packer() -> None:
    from packwrap.build.session import BuildSession
    from packwrap.template.cliargs import PackerFlags

    for env, want in (({"NO_COLOR": "1"}, True), ({}, False)):
        session = BuildSession(PackerFlags(), env=env, install_signals=False)
        assert ("-color=false" in session.packer_argv("packer", [])) is want


def test_color_false() -> None:
    out = Tty()
    BuildUi("a", Terminal(out, out, color=False)).say("x")
    assert out.getvalue() == "==> a: x\n"


def test_timestamp_ui() -> None:
    out = io.StringIO()
    BuildUi("a", Terminal(out, out, timestamp=True)).say("x")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: ==> a: x\n", out.getvalue())


def test_machine_readable_format_and_escapes() -> None:
    out = io.StringIO()
    ui = BuildUi("qemu.t", Terminal(out, out, machine=True))
    ui.say("a, b\nc")
    ui.error("bad")
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"\d+,,ui,say,==> qemu.t: a%!\(PACKER_COMMA\) b\\nc", lines[0])
    assert re.fullmatch(r"\d+,,ui,error,==> qemu.t: bad", lines[1])
    assert machine_escape("x,y\r\n") == "x%!(PACKER_COMMA)y\\r\\n"


def test_secrets_masked_everywhere(tmp_path: Path) -> None:
    out = io.StringIO()
    ui = BuildUi("a", Terminal(out, out), log_path=tmp_path / "l", secrets={"hunter2"})
    ui.add_secret("s3cr3t-passphrase")
    ui.say("password hunter2 and s3cr3t-passphrase")
    ui.log("typed hunter2")
    ui.close()
    text = out.getvalue() + (tmp_path / "l").read_text()
    assert "hunter2" not in text and "s3cr3t" not in text
    assert text.count("<sensitive>") == 5


def test_progress_line_on_a_terminal_updates_in_place() -> None:
    out = Tty()
    term = Terminal(out, out, color=False)
    ui = BuildUi("qemu.t", term)
    with waiting(ui, "Waiting for the install to finish"):
        time.sleep(2.0)  # the ticker redraws once a second
        ui.say("a line in between")
    text = out.getvalue()
    # the first draw at once, then one a second (a loaded machine may be a tick late)
    assert re.search(r"qemu.t: Waiting for the install to finish\.\.\. 0\.\ds", text)
    assert re.search(r"qemu.t: Waiting for the install to finish\.\.\. 1\.\ds", text)
    # the live line is cleared before a normal line and at the end
    assert "\r\x1b[K==> qemu.t: a line in between\n" in text
    # gone at the end, with a record of the wait (it took >= 2 s)
    assert re.search(r"\r\x1b\[K    qemu.t: Waiting for the install to finish: 2\.\ds\n$", text)


def test_progress_without_terminal_is_one_line() -> None:
    out = io.StringIO()
    ui = BuildUi("qemu.t", Terminal(out, out))
    with waiting(ui, "Waiting for shutdown"):
        pass
    assert out.getvalue() == "==> qemu.t: Waiting for shutdown...\n"


def test_waiting_works_with_any_ui() -> None:
    out = io.StringIO()
    with waiting(PlainUi("x", out, out), "Waiting"):
        pass
    assert out.getvalue() == "==> x: Waiting...\n"
