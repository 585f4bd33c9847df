"""Where the HTTP server listens: http_interface and http_network_protocol (the SDK's
HTTPConfig), with real listeners on loopback only (packwrap/build/http_server.py,
packwrap/build/host_interface.py)."""

from __future__ import annotations

import errno
import http.client
import socket
from pathlib import Path

import pytest
from packwrap_qemu.builder import QemuBuilder
from packwrap_qemu.step_http_ip import StepHTTPIPDiscover

from packwrap.build import host_interface
from packwrap.build.http_server import DocrootServer, listener_family, requested_bind_address
from packwrap.build.steps.http_server import StepHTTPServer
from packwrap.config.schema import SourceBody
from packwrap.errors import PackwrapError
from tests.state_support import make_state


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def qemu_problems(**values) -> list[str]:
    values = {"kernel": "k", "communicator": "none", **values}
    _, problems, _ = QemuBuilder.schema.prepare(SourceBody(values, file="t", line=1))
    return [p.message for p in problems]


def qemu_state(tmp_path: Path, **values):
    values = {"kernel": "k", "communicator": "none", "http_directory": str(tmp_path),
              "http_port_min": 0, "http_port_max": 0, **values}  # fmt: skip
    config, problems, _ = QemuBuilder.schema.prepare(SourceBody(values, file="t", line=1))
    assert problems == []
    return make_state(config, template_dir=tmp_path)


def test_interface_ipv4_of_lo_and_one_line_errors(monkeypatch):
    assert host_interface.interface_ipv4("lo", "http_interface") == "127.0.0.1"
    with pytest.raises(PackwrapError) as err:
        host_interface.interface_ipv4("nosuch0", "http_interface")
    assert str(err.value) == "http_interface 'nosuch0': no such network interface"

    def no_address(*_args):
        raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")

    monkeypatch.setattr(host_interface.fcntl, "ioctl", no_address)
    with pytest.raises(PackwrapError) as err:
        host_interface.interface_ipv4("lo", "http_interface")
    assert str(err.value) == "http_interface 'lo' has no IPv4 address"


def test_requested_bind_address():
    assert requested_bind_address({"http_bind_address": "127.0.0.2"}) == "127.0.0.2"
    assert requested_bind_address({"http_interface": "lo"}) == "127.0.0.1"
    assert requested_bind_address({}) is None


def test_http_interface_or_bind_address_as_the_sdk_says():
    assert qemu_problems(http_interface="lo", http_bind_address="127.0.0.1") == [
        "either http_interface or http_bind_address can be specified"
    ]


def test_qemu_binds_the_server_to_the_interface(tmp_path):
    state = qemu_state(tmp_path, http_interface="lo")
    StepHTTPIPDiscover().run(state)
    assert state.data["http_bind_address"] == "127.0.0.1"
    step = StepHTTPServer()
    step.run(state)
    try:
        assert state.data["http_server"]._server.server_address[0] == "127.0.0.1"
    finally:
        step.cleanup(state)
    state = qemu_state(tmp_path, http_interface="nosuch0")
    with pytest.raises(PackwrapError, match="http_interface 'nosuch0': no such network"):
        StepHTTPIPDiscover().run(state)


def test_protocol_family_rules():
    assert listener_family("127.0.0.1", "tcp") == socket.AF_INET
    assert listener_family("::1", "tcp") == socket.AF_INET6
    assert listener_family("0.0.0.0", "tcp4") == socket.AF_INET
    with pytest.raises(PackwrapError) as err:
        listener_family("127.0.0.1", "tcp6")
    assert str(err.value) == (
        "http_network_protocol 'tcp6' listens on IPv6 only; the HTTP server's address "
        "127.0.0.1 is not an IPv6 address"
    )
    with pytest.raises(PackwrapError, match="'tcp4' listens on IPv4 only"):
        listener_family("::1", "tcp4")


def test_protocol_problems_at_validate():
    assert qemu_problems(http_network_protocol="tcp4", http_bind_address="::1") == [
        "http_network_protocol 'tcp4' listens on IPv4 only; the HTTP server's address ::1 "
        "is not an IPv4 address"
    ]
    assert qemu_problems(http_network_protocol="udp") == [
        "option 'http_network_protocol': 'udp' is not one of tcp, tcp4, tcp6"
    ]
    # the guests are told an IPv4 {{ .HTTPIP }}: an IPv6-only listener cannot serve them
    for bind in (None, "::1"):
        assert qemu_problems(http_network_protocol="tcp6", http_bind_address=bind) == [
            'http_network_protocol "tcp6": the guest is told an IPv4 address for the HTTP '
            'server ({{ .HTTPIP }}), which an IPv6-only listener does not answer; use "tcp" '
            'or "tcp4"'
        ]
    assert qemu_problems(http_network_protocol="tcp4") == []


def test_tcp4_listens_on_ipv4(tmp_path):
    srv = DocrootServer(roots=[tmp_path], bind="127.0.0.1", protocol="tcp4", port_min=0,
                        port_max=0)  # fmt: skip
    try:
        assert srv._server.socket.family == socket.AF_INET
    finally:
        srv.shutdown()


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this host")
def test_tcp6_listens_on_ipv6_only(tmp_path):
    (tmp_path / "f").write_text("six\n")
    srv = DocrootServer(roots=[tmp_path], bind="::1", protocol="tcp6", port_min=0, port_max=0)
    try:
        sock = srv._server.socket
        assert sock.family == socket.AF_INET6
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
        conn = http.client.HTTPConnection("::1", srv.port, timeout=5)
        try:
            conn.request("GET", "/f")
            assert conn.getresponse().read() == b"six\n"
        finally:
            conn.close()
    finally:
        srv.shutdown()
