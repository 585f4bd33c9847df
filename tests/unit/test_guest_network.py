"""Issue 18: a static guest address on both builders, one rule (packwrap/build/guest_network.py).

QEMU's user network follows the address (plugin/packwrap_qemu/usernet.py), vmm refuses an
address outside vmd's /31, and the response-file renderer refuses the same bad input
(no route, a netmask that does not contain the route) with one line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from packwrap_qemu import usernet
from packwrap_qemu.config import SCHEMA as QEMU_SCHEMA
from packwrap_qemu.driver import QemuSpec, qemu_argv
from packwrap_vmm.config import SCHEMA as VMM_SCHEMA

from packwrap.autoinstall.render import render_install_conf
from packwrap.build.guest_network import parse_static_ipv4, vmd_problem
from packwrap.config.schema import ConfigError, SourceBody
from packwrap.config.size import Size
from packwrap.errors import PackwrapError


@pytest.mark.parametrize("dhcp", ["", "autoconf", "a", "dhcp", "none"])
def test_dhcp_answers_are_not_static(dhcp):
    assert parse_static_ipv4(dhcp, "", "") is None


def test_cidr_and_netmask_forms_mean_the_same():
    a = parse_static_ipv4("192.0.2.10/24", "", "192.0.2.1")
    b = parse_static_ipv4("192.0.2.10", "255.255.255.0", "192.0.2.1")
    assert a == b and a is not None
    assert str(a.network) == "192.0.2.0/24" and str(a.route) == "192.0.2.1"
    assert parse_static_ipv4("192.0.2.10/24", "", "none").route is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("address", "netmask", "route", "message"),
    [
        ("192.0.2.10/24", "", "", "needs a default route"),
        ("192.0.2.10/24", "", "10.0.0.1", "netmask must contain the route"),
        ("192.0.2.10", "255.255.255.128", "192.0.2.200", "outside 192.0.2.0/25"),
        ("192.0.2.10/24", "", "192.0.2.10", "the guest's own address"),
        ("192.0.2.0/24", "", "192.0.2.1", "network or broadcast"),
        ("192.0.2.300/24", "", "192.0.2.1", "not an IPv4 address"),
        ("192.0.2.10/24", "", "gw", "not an IPv4 address or 'none'"),
    ],
)
def test_bad_static_settings_are_one_line(address, netmask, route, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_static_ipv4(address, netmask, route)
    assert "\n" not in str(info.value)


def test_qemu_user_network_moves_into_the_guest_subnet():
    net = usernet.plan(parse_static_ipv4("192.0.2.10/24", "", "192.0.2.1"))
    # the route is QEMU's host; DNS, HTTP and DHCP take free addresses, never the guest's
    assert net.options() == [
        "net=192.0.2.0/24",
        "host=192.0.2.1",
        "dns=192.0.2.2",
        "dhcpstart=192.0.2.4",
    ]
    assert net.http_ip == "192.0.2.3"
    assert {net.host, net.dns, net.http_ip, net.dhcpstart} & {"192.0.2.10"} == set()
    assert len({net.host, net.dns, net.http_ip, net.dhcpstart}) == 4
    # without a route the user network's host takes a free address of the subnet
    alone = usernet.plan(parse_static_ipv4("10.9.0.2/29", "", "none"))
    assert alone.host == "10.9.0.1" and alone.http_ip not in ("10.9.0.1", "10.9.0.2")
    assert usernet.plan(None) == usernet.DEFAULT and usernet.DEFAULT.options() == []
    with pytest.raises(ValueError, match="/29 or larger"):
        usernet.plan(parse_static_ipv4("10.9.0.1/30", "", "10.9.0.2"))


def _spec(**kw) -> QemuSpec:
    return QemuSpec(
        binary="qemu-system-x86_64", machine="pc", accel="tcg", cpu="max",
        memory=Size.of_mib(256), cpus=1, disk_path=Path("d.raw"), disk_format="raw",
        qmp_path=Path("q.sock"), **kw,
    )  # fmt: skip


def test_hermetic_guestfwd_sits_in_the_guest_subnet():
    net = usernet.plan(parse_static_ipv4("192.0.2.10/24", "", "192.0.2.1"))
    argv = qemu_argv(_spec(hermetic=True, http_port=8123, fwd_command="nc 127.0.0.1",
                           user_net=net))  # fmt: skip
    netdev = argv[argv.index("-netdev") + 1]
    assert netdev.startswith("user,id=n0,net=192.0.2.0/24,host=192.0.2.1,")
    assert f"restrict=on,guestfwd=tcp:{net.http_ip}:80-cmd:nc 127.0.0.1 8123" in netdev
    plain = qemu_argv(_spec(hermetic=True, http_port=8123, fwd_command="nc 127.0.0.1"))
    assert "guestfwd=tcp:10.0.2.100:80-" in plain[plain.index("-netdev") + 1]


QEMU_BASE = {"iso_url": "x.iso", "iso_checksum": "none", "communicator": "none"}
VMM_BASE = {"vm_name": "v", "output_directory": "out", "disk_size": "1G", "cdrom": "x.iso"}


def _problems(schema, body):
    try:
        return [p.message for p in schema.prepare(SourceBody(body, file="t.json", line=1))[1]]
    except ConfigError as exc:
        return [p.message for p in exc.problems]


def test_builders_check_the_static_address_once():
    ok = {"guest_ipv4": "192.0.2.10/24", "guest_ipv4_route": "192.0.2.1"}
    assert not _problems(QEMU_SCHEMA, {**QEMU_BASE, **ok})
    no_route = _problems(QEMU_SCHEMA, {**QEMU_BASE, "guest_ipv4": "192.0.2.10/24"})
    assert no_route == [
        "guest_ipv4_route: static address 192.0.2.10/24 needs a default route: an address "
        "in 192.0.2.0/24, or 'none'"
    ]
    small = _problems(QEMU_SCHEMA, {**QEMU_BASE, "guest_ipv4": "10.9.0.1/30",
                                    "guest_ipv4_route": "10.9.0.2"})  # fmt: skip
    assert len(small) == 1 and "/29 or larger" in small[0]
    vmm = _problems(VMM_SCHEMA, {**VMM_BASE, **ok})
    assert len(vmm) == 1
    assert "vmd gives the VM only its local /31" in vmm[0]
    assert "answer ipv4 = autoconf (vmd's DHCP)" in vmm[0] and "site set or a provisioner" in vmm[0]
    tap = {"guest_ipv4": "100.64.1.3/31", "guest_ipv4_route": "100.64.1.2"}
    assert not _problems(VMM_SCHEMA, {**VMM_BASE, **tap})
    assert vmd_problem(parse_static_ipv4("100.64.1.3/31", "", "100.64.1.2")) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ipv4": "192.0.2.10/24"}, "variable ipv4_route: required with a static ipv4"),
        (
            {"ipv4": "192.0.2.10", "ipv4_netmask": "255.255.255.128", "ipv4_route": "192.0.2.129"},
            "variable ipv4_route: route 192.0.2.129 is outside 192.0.2.0/25",
        ),
    ],
)
def test_render_refuses_the_bad_input_with_one_line(values, message):
    with pytest.raises(PackwrapError) as info:
        render_install_conf(values, "7.6")
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_a_static_answer_the_source_does_not_pass_stops_the_build_before_qemu(tmp_path):
    """A project made before guest_ipv4 existed: its template does not pass the address,
    so QEMU's network would stay 10.0.2.0/24, out of the installer's reach."""
    from packwrap_qemu.step_http_ip import StepHTTPIPDiscover

    from tests.state_support import make_state

    def state_for(**config):
        body = SourceBody({**QEMU_BASE, **config}, file="t.json", line=1)
        config_obj, problems, _ = QEMU_SCHEMA.prepare(body)
        assert not problems
        state = make_state(config_obj, template_dir=tmp_path)
        state.data["project_values"] = {"ipv4": "192.0.2.10/24", "ipv4_route": "192.0.2.1"}
        return state

    with pytest.raises(PackwrapError, match="add guest_ipv4 = var.ipv4") as info:
        StepHTTPIPDiscover().run(state_for())
    assert "\n" not in str(info.value)
    told = state_for(guest_ipv4="192.0.2.10/24", guest_ipv4_route="192.0.2.1")
    StepHTTPIPDiscover().run(told)
    assert told.data["http_ip"] == "192.0.2.1"  # not hermetic: the user network's host
