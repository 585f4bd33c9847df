"""Packer's VNC range under parallel builds, with real QEMUs (paused, no guest): each
QEMU binds the first free display of the range itself, so two builds never get the same
port and a port another program holds is skipped (plugin/packwrap_qemu/vnc.py)."""

from __future__ import annotations

import contextlib
import shutil
import socket
from pathlib import Path

import pytest
from packwrap_qemu import driver, vnc
from packwrap_qemu.builder import QemuBuilder

from packwrap.config.schema import SourceBody
from tests.state_support import make_state

pytestmark = pytest.mark.e2e


def free_run(length: int) -> int:
    """A port p near the top of 5900-6000 with p..p+length-1 free on loopback now (the
    suite's builds take the lowest free ports, so they rarely come up here meanwhile)."""
    for first in range(6001 - length, 5899, -1):
        with contextlib.ExitStack() as stack:
            try:
                for port in range(first, first + length):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return first
    pytest.skip("no free run of VNC ports on loopback")


def test_parallel_qemus_take_distinct_ports_and_skip_a_busy_one(tmp_path: Path):
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("needs qemu-system-x86_64")
    first = free_run(4)
    values = {"kernel": "k", "communicator": "none", "vnc_port_min": first,
              "vnc_port_max": first + 3, "vnc_use_password": True}  # fmt: skip
    config, problems, _ = QemuBuilder.schema.prepare(SourceBody(values, file="t", line=1))
    assert problems == []
    arg = vnc.vnc_arg(config, password=True)
    vms: list[driver.QemuProcess] = []
    states = []
    with socket.socket() as busy:  # another program holds the range's first port
        busy.bind(("127.0.0.1", first))
        busy.listen()
        try:
            for i in range(2):
                qmp = tmp_path / f"q{i}.sock"
                argv = ["qemu-system-x86_64", "-machine", "none", "-display", "none",
                        "-nodefaults", "-S", "-vnc", arg, "-qmp",
                        f"unix:{qmp},server=on,wait=off"]  # fmt: skip
                vms.append(driver.QemuProcess(argv, qmp, tmp_path / f"q{i}.log"))
                state = make_state(config)
                state.data["vnc_password"] = vnc.password(config)
                vnc.configure(vms[-1], config, state)  # query-vnc, change-vnc-password
                states.append(state)
        finally:
            for vm in vms:
                vm.stop()
    ports = [s.data["vnc_port"] for s in states]
    assert len(set(ports)) == 2 and first not in ports, ports
    assert all(first < p <= first + 3 for p in ports), ports
    for state, port in zip(states, ports, strict=True):
        assert f"Found available VNC port: {port} on IP: 127.0.0.1" in state.ui.lines
