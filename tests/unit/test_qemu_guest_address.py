"""net_bridge without ssh_host: the guest's address from the host's ARP table, as
Packer's step_wait_guest_address.go finds it (plugin/packwrap_qemu/step_wait_guest_address.py)."""

from __future__ import annotations

import re
import threading

import pytest
from packwrap_qemu import step_wait_guest_address as wga
from packwrap_qemu.builder import QemuBuilder
from packwrap_qemu.driver import qemu_argv
from packwrap_qemu.step_port_forward import StepPortForward

from packwrap.config.schema import SourceBody
from packwrap.errors import Cancelled, PackwrapError
from tests import state_support
from tests.qemu_spec_support import pairs, spec

HEADER = "IP address       HW type     Flags       HW address            Mask     Device\n"
MAC = "52:54:00:ab:cd:ef"


def table(*rows: str) -> str:
    return HEADER + "".join(row + "\n" for row in rows)


def make_state(tmp_path, **values):
    values = {"iso_url": "x.iso", "iso_checksum": "none", **values}
    config, problems, _ = QemuBuilder.schema.prepare(SourceBody(values, file="t", line=1))
    # this host's bridge ACL is no concern here (test_qemu_options.py checks that rule)
    assert [p for p in problems if "qemu-bridge-helper" not in p.message] == [], problems
    return state_support.make_state(config)


def test_a_complete_entry_on_the_bridge_is_the_address():
    rows = table(
        f"192.168.122.9    0x1         0x0         {MAC}     *        br0",  # incomplete
        f"10.0.0.7         0x1         0x2         {MAC}     *        virbr1",  # other bridge
        "192.168.122.8    0x1         0x2         52:54:00:00:00:01     *        br0",
        f"192.168.122.77   0x1         0x2         {MAC.upper()}     *        br0",
    )
    assert wga.address_for(MAC, "br0", rows) == "192.168.122.77"
    assert wga.address_for(MAC, "br1", rows) is None
    assert wga.address_for(MAC, "br0", HEADER) is None


def test_each_build_gets_its_own_mac_in_qemus_prefix():
    macs = {wga.guest_mac() for _ in range(50)}
    assert len(macs) == 50
    assert all(re.fullmatch(r"52:54:00(:[0-9a-f]{2}){3}", m) for m in macs)


def test_the_nic_carries_the_mac():
    bridged = pairs(qemu_argv(spec(net_bridge="br0", mac_address=MAC)), "-device")
    assert f"virtio-net-pci,netdev=n0,mac={MAC},romfile=" in bridged
    assert "virtio-net-pci,netdev=n0,romfile=" in pairs(qemu_argv(spec()), "-device")


def test_port_forward_gives_a_bridged_build_a_mac_and_no_forward(tmp_path):
    state = make_state(tmp_path, net_bridge="br0", ssh_username="root")
    StepPortForward().run(state)
    assert re.fullmatch(r"52:54:00(:[0-9a-f]{2}){3}", state.data["guest_mac"])
    assert "ssh_host_port" not in state.data and "ssh_host" not in state.data


def test_the_step_runs_only_for_a_bridge_without_ssh_host(tmp_path):
    step = wga.StepWaitGuestAddress()
    assert step.applies(make_state(tmp_path / "a", net_bridge="br0", ssh_username="root"))
    assert not step.applies(make_state(tmp_path / "b", ssh_username="root"))
    assert not step.applies(
        make_state(tmp_path / "c", net_bridge="br0", ssh_username="root", ssh_host="10.0.0.2")
    )
    assert not step.applies(make_state(tmp_path / "d", net_bridge="br0", communicator="none"))


def test_the_step_waits_until_the_host_learns_the_guest(tmp_path, monkeypatch):
    monkeypatch.setattr(wga, "POLL_S", 0.05)
    arp = tmp_path / "arp"
    arp.write_text(HEADER)
    state = make_state(tmp_path, net_bridge="br0", ssh_username="root")
    state.data["guest_mac"] = MAC
    later = threading.Timer(0.3, arp.write_text, [table(f"192.168.122.5  0x1  0x2  {MAC}  *  br0")])
    later.start()
    try:
        wga.StepWaitGuestAddress(arp).run(state)
    finally:
        later.cancel()
    assert state.data["ssh_host"] == "192.168.122.5"
    assert ("message", "Found guest address 192.168.122.5") in state.ui.events


def test_no_address_by_the_timeout_is_one_line_naming_ssh_host(tmp_path, monkeypatch):
    monkeypatch.setattr(wga, "POLL_S", 0.05)
    arp = tmp_path / "arp"
    arp.write_text(HEADER)
    state = make_state(tmp_path, net_bridge="br0", ssh_username="root", ssh_timeout="1s")
    state.data["guest_mac"] = MAC
    with pytest.raises(PackwrapError, match=rf"no address for the guest \({MAC}\) .* after 1s"):
        wga.StepWaitGuestAddress(arp).run(state)


def test_ctrl_c_ends_the_wait(tmp_path):
    arp = tmp_path / "arp"
    arp.write_text(HEADER)
    state = make_state(tmp_path, net_bridge="br0", ssh_username="root")
    state.data["guest_mac"] = MAC
    threading.Timer(0.2, state.cancel_event.set).start()
    with pytest.raises(Cancelled):
        wga.StepWaitGuestAddress(arp).run(state)


def test_the_real_arp_table_reads():
    """/proc/net/arp has the header the parser skips (Linux)."""
    text = wga.ARP_TABLE.read_text()
    assert text.split()[:3] == ["IP", "address", "HW"]
    assert wga.address_for(MAC, "br0", text) is None
