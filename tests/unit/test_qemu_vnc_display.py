"""Packer's VNC, headless and ISO-name options on the qemu builder (plugin/packwrap_qemu/
vnc.py, display.py, step_media.py): the QEMU arguments, the QMP calls, the log lines."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from packwrap_qemu import display, vnc
from packwrap_qemu.builder import QemuBuilder
from packwrap_qemu.driver import qemu_argv

from packwrap.config.schema import SourceBody
from packwrap.errors import PackwrapError
from tests import state_support
from tests.qemu_spec_support import pairs, spec


def config(**values: Any):
    values = {"kernel": "bsd.rd", "communicator": "none", **values}
    prepared, problems, _ = QemuBuilder.schema.prepare(SourceBody(values, file="t", line=1))
    assert problems == [], problems
    return prepared


def problems_of(**values: Any) -> list[str]:
    values = {"kernel": "bsd.rd", "communicator": "none", **values}
    _, problems, _ = QemuBuilder.schema.prepare(SourceBody(values, file="t", line=1))
    return [p.message for p in problems]


# --------------------------------------------------------------------------- VNC


def test_vnc_is_on_by_default_on_loopback_over_packers_range():
    assert vnc.vnc_arg(config(), password=False) == "127.0.0.1:0,to=100"
    assert vnc.vnc_arg(config(), password=True) == "127.0.0.1:0,to=100,password=on"


def test_vnc_range_address_and_disable():
    c = config(vnc_bind_address="0.0.0.0", vnc_port_min=5905, vnc_port_max=5910)
    assert vnc.vnc_arg(c, password=False) == "0.0.0.0:5,to=10"
    assert vnc.vnc_arg(config(vnc_port_min=5901, vnc_port_max=5901), password=False) == (
        "127.0.0.1:1"  # one port: no range to walk
    )
    assert vnc.vnc_arg(config(vnc_bind_address="::1"), password=False) == "[::1]:0,to=100"
    assert vnc.vnc_arg(config(disable_vnc=True), password=False) is None


def test_vnc_reaches_the_command_line_and_qemuargs_may_replace_it():
    argv = qemu_argv(spec(vnc="127.0.0.1:0,to=100"))
    assert pairs(argv, "-vnc") == ["127.0.0.1:0,to=100"]
    assert pairs(qemu_argv(spec()), "-vnc") == []
    argv = qemu_argv(spec(vnc="127.0.0.1:0,to=100", user_args=[["-vnc", "none"]]))
    assert pairs(argv, "-vnc") == ["none"]  # as Packer: a qemuargs switch replaces ours


def test_vnc_use_password_enables_the_qmp_socket_as_packer_does():
    assert config(vnc_use_password=True).qmp_enable
    assert not config().qmp_enable


def test_vnc_password_random_given_or_none():
    assert vnc.password(config()) == ""
    assert vnc.password(config(vnc_use_password=True, vnc_password="s3cret")) == "s3cret"
    first = vnc.password(config(vnc_use_password=True))
    assert len(first) == 8 and first.isalnum()
    assert first != vnc.password(config(vnc_use_password=True))
    assert vnc.password(config(vnc_use_password=True, disable_vnc=True)) == ""


class FakeQmp:
    def __init__(self, vnc_info: dict[str, Any]) -> None:
        self.vnc_info = vnc_info
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def execute(self, command: str, timeout: float = 10.0, **arguments: Any) -> Any:
        self.calls.append((command, arguments))
        return self.vnc_info if command == "query-vnc" else {}


class FakeVm:
    def __init__(self, vnc_info: dict[str, Any]) -> None:
        self.qmp = FakeQmp(vnc_info)


RUNNING = {"enabled": True, "host": "127.0.0.1", "service": "5903", "family": "ipv4"}


def test_configure_says_where_qemu_listens_as_packer_does():
    state = state_support.make_state(config())
    state.data["vnc_password"] = ""
    vm = FakeVm(RUNNING)
    vnc.configure(vm, state.config, state)  # type: ignore[arg-type]
    assert [c for c, _ in vm.qmp.calls] == ["query-vnc"]
    assert state.data["vnc_port"] == 5903
    assert state.ui.lines == [
        "Found available VNC port: 5903 on IP: 127.0.0.1",
        "Connect to the VM via VNC without a password to vnc://127.0.0.1:5903",
    ]


def test_configure_sets_the_password_before_the_guest_runs():
    state = state_support.make_state(config(vnc_use_password=True))
    state.data["vnc_password"] = "abcdEFG1"
    vm = FakeVm(RUNNING)
    vnc.configure(vm, state.config, state)  # type: ignore[arg-type]
    assert vm.qmp.calls[1] == ("change-vnc-password", {"password": "abcdEFG1"})
    assert state.ui.lines[-1].endswith("vnc://127.0.0.1:5903 with the password: abcdEFG1")
    # the user's own password is set the same way, but never printed
    state = state_support.make_state(config(vnc_use_password=True, vnc_password="mine"))
    state.data["vnc_password"] = "mine"
    vm = FakeVm(RUNNING)
    vnc.configure(vm, state.config, state)  # type: ignore[arg-type]
    assert ("change-vnc-password", {"password": "mine"}) in vm.qmp.calls
    assert not any("mine" in line for line in state.ui.lines)


def test_configure_is_quiet_when_qemuargs_turned_vnc_off():
    state = state_support.make_state(config())
    vm = FakeVm({"enabled": False})
    vnc.configure(vm, state.config, state)  # type: ignore[arg-type]
    assert state.ui.lines == [] and "vnc_port" not in state.data


# --------------------------------------------------------------------------- headless


@pytest.fixture
def gtk(monkeypatch):
    monkeypatch.setattr(display, "backends", lambda binary: frozenset({"none", "gtk", "sdl"}))


def test_headless_true_never_opens_a_window(gtk):
    screen = display.choose(config(headless=True), {"DISPLAY": ":0"})
    assert (screen.value, screen.note) == ("none", None)


def test_headless_false_opens_packers_window_where_there_is_a_screen(gtk):
    assert display.choose(config(), {"DISPLAY": ":0"}).value == "gtk"
    assert display.choose(config(), {"WAYLAND_DISPLAY": "wayland-0"}).value == "gtk"
    assert display.choose(config(display="sdl"), {"DISPLAY": ":0"}).value == "sdl"
    # as in Packer, headless = true wins over display
    assert display.choose(config(display="sdl", headless=True), {"DISPLAY": ":0"}).value == "none"


def test_headless_false_without_a_screen_runs_windowless_and_says_why(gtk):
    screen = display.choose(config(), {})
    assert screen.value == "none" and screen.windowless
    assert screen.note == (
        "headless = false, but no $DISPLAY or $WAYLAND_DISPLAY: running without a window"
    )


def test_a_qemu_without_the_display_module_runs_windowless(monkeypatch):
    monkeypatch.setattr(display, "backends", lambda binary: frozenset({"none"}))
    screen = display.choose(config(), {"DISPLAY": ":0"})
    assert screen.value == "none"
    assert "qemu-system-x86_64 has no gtk display (qemu-system-gui)" in (screen.note or "")


def test_display_none_and_the_default_display(gtk):
    assert display.choose(config(display="none"), {"DISPLAY": ":0"}).value == "none"
    assert display.choose(config(use_default_display=True), {"DISPLAY": ":0"}).value is None
    # not windows: need no screen
    assert display.choose(config(display="egl-headless"), {}).value == "egl-headless"


def test_the_test_suite_has_no_screen():
    """The fixture builds must never open a window: tests/conftest.py drops the
    screen variables for every test and every packwrap it starts."""
    import os

    assert not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")


# --------------------------------------------------------------------------- iso_target_extension


def test_a_remote_iso_is_found_under_packers_download_name(tmp_path):
    from packwrap_qemu.step_media import StepResolveMedia

    url = "https://cdn.openbsd.org/pub/OpenBSD/7.6/amd64/install76.img"
    checksum = "sha256:" + hashlib.sha256(b"img").hexdigest()
    values = dict(iso_url=url, iso_checksum=checksum, iso_target_path=str(tmp_path / "dl"),
                  iso_target_extension="IMG", output_directory=str(tmp_path / "o"))  # fmt: skip
    state = state_support.make_state(config(**values, kernel=None))
    expected = tmp_path / "dl" / (hashlib.sha1(checksum.encode()).hexdigest() + ".img")
    with pytest.raises(PackwrapError, match=f"fetch-iso --output {expected}` first"):
        StepResolveMedia().run(state)
    expected.parent.mkdir()
    expected.write_bytes(b"img")
    StepResolveMedia().run(state)
    assert state.data["iso_path"] == expected.resolve()


def test_packer_target_path_rules(tmp_path):
    from packwrap.media.cache import packer_target_path

    url = "https://x/install76.iso"
    sha1 = hashlib.sha1
    assert packer_target_path(url, "none", str(tmp_path / "a.iso"), "iso") == tmp_path / "a.iso"
    by_url = tmp_path / "d" / (sha1(url.encode()).hexdigest() + ".iso")
    assert packer_target_path(url, "none", str(tmp_path / "d"), "iso") == by_url
    assert packer_target_path(url, "", f"{tmp_path}/d.x/", "iso") == tmp_path / "d.x" / (
        by_url.name
    )
    by_sum = tmp_path / "d" / (sha1(b"md5:00").hexdigest() + ".raw")
    assert packer_target_path(url, "md5:00", str(tmp_path / "d"), "raw") == by_sum


# ------------------------------------------------------------- ignored by Packer too


def test_options_packer_ignores_load_with_the_warning_and_winrm_is_refused():
    _, problems, warnings = QemuBuilder.schema.prepare(
        SourceBody({"kernel": "k", "communicator": "none", "run_once": True}, file="t", line=1)
    )
    assert problems == [] and warnings == ["option 'run_once' is accepted but has no effect"]
    assert problems_of(communicator="winrm") == [
        "communicator 'winrm': OpenBSD has no WinRM service: use communicator = \"ssh\""
    ]
