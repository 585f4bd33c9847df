"""Issue 18: lint knows the network (packwrap/autoinstall/netlint.py).

The two set-ups that aborted a real install while lint said OK are now caught before any
build starts: a remote sets mirror on QEMU's hermetic network, and a static address the
build's HTTP server cannot be reached from (vmd's /31). Each finding has its line and a fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from packwrap.autoinstall.lint import InstallContext, lint
from tests.packwrap_runner import run_cli

BASE = """System hostname = openbsd
IPv4 address for vio0 = {address}
IPv6 address for vio0 = none
Default IPv4 route = {route}
Password for root account = *************
What timezone are you in = UTC
URL to autopartitioning template for disklabel = {disklabel}
Location of sets = http
{proxy}HTTP Server = {server}
Server directory = pub/OpenBSD/7.6/amd64
"""
BUILD = "{{ .HTTPIP }}:{{ .HTTPPort }}"


def conf(*, address="192.0.2.10/24", route="192.0.2.1", server=BUILD, proxy="",
         disklabel=f"http://{BUILD}/disklabel") -> str:  # fmt: skip
    proxy_line = f"HTTP proxy URL = {proxy}\n" if proxy else ""
    return BASE.format(address=address, route=route, server=server, proxy=proxy_line,
                       disklabel=disklabel)  # fmt: skip


def net_errors(text: str, **ctx) -> list[tuple[int, str]]:
    found = lint(text, "7.6", answers_context=InstallContext(**ctx))
    return [(f.line, f.message) for f in found if f.is_error]


def line_of(text: str, start: str) -> int:
    return next(n for n, ln in enumerate(text.splitlines(), 1) if ln.startswith(start))


def test_a_static_address_with_the_builds_server_is_fine_on_qemu():
    assert net_errors(conf(), builders=("qemu",), hermetic=True) == []


def test_remote_mirror_on_a_hermetic_network_names_line_and_fix():
    text = conf(server="cdn.openbsd.org")
    errors = net_errors(text, builders=("qemu",), hermetic=True)
    assert [line for line, _ in errors] == [line_of(text, "HTTP Server")]
    assert "cdn.openbsd.org is unreachable on the hermetic network" in errors[0][1]
    assert "fix: fetch the sets into the cache (`packwrap fetch-iso --sets`)" in errors[0][1]
    assert net_errors(text, builders=("qemu",), hermetic=False) == []  # a real network: fine


def test_the_hermetic_address_written_out_is_only_a_warning():
    text = conf(address="autoconf", route="none", server="http://10.0.2.100")
    found = lint(text, "7.6", answers_context=InstallContext(builders=("qemu",), hermetic=True))
    mine = [f for f in found if "10.0.2.100" in f.message]
    assert [(f.line, f.severity) for f in mine] == [(line_of(text, "HTTP Server"), "warning")]
    assert "write {{ .HTTPIP }}:{{ .HTTPPort }}" in mine[0].message


def test_proxy_on_a_hermetic_network():
    text = conf(proxy="http://proxy:3128")
    errors = net_errors(text, builders=("qemu",), hermetic=True)
    assert [(line, msg.split(";")[0]) for line, msg in errors] == [
        (line_of(text, "HTTP proxy URL"),
         "HTTP proxy http://proxy:3128 is unreachable on the hermetic network"),
    ]  # fmt: skip


def test_static_address_outside_vmds_network_cannot_reach_the_build():
    text = conf()
    errors = net_errors(text, builders=("openbsd-vmm",))
    assert [line for line, _ in errors] == [
        line_of(text, "URL to autopartitioning"),
        line_of(text, "HTTP Server"),
    ]
    assert "vmd gives the VM only its local /31" in errors[0][1]
    tap = conf(address="100.64.1.3/31", route="100.64.1.2")
    assert net_errors(tap, builders=("openbsd-vmm",)) == []


def test_route_outside_the_netmask_and_unreachable_literal_servers():
    text = conf(route="10.0.0.1")
    errors = net_errors(text)
    assert errors[0][0] == line_of(text, "Default IPv4 route")
    assert "the netmask must contain the route" in errors[0][1] and "fix:" in errors[0][1]
    isolated = conf(route="none", disklabel="http://10.0.2.100/disklabel")
    errors = net_errors(isolated)
    assert errors == [
        (line_of(isolated, "URL to autopartitioning"),
         "10.0.2.100 is outside the guest's network 192.0.2.0/24 and there is no default "
         "route; fix: answer 'Default IPv4 route' or use a server in 192.0.2.0/24"),
    ]  # fmt: skip


def _new(tmp_path: Path, *variables: str, builder: str = "qemu"):
    args = ["new", "openbsd-76", str(tmp_path / "p"), "--builder", builder, "--no-root-password"]
    for v in variables:
        args += ["--var", v]
    return run_cli(*args)


def test_lint_and_validate_catch_a_remote_mirror_on_the_hermetic_network(tmp_path):
    made = _new(tmp_path, "sets_location=http", "sets_http_server=cdn.openbsd.org")
    assert made.returncode == 0, made.stderr
    linted = run_cli("lint", cwd=tmp_path / "p")
    assert linted.returncode != 0
    assert "http/install.conf.pkr.in:" in linted.stdout + linted.stderr
    assert "cdn.openbsd.org is unreachable on the hermetic network" in linted.stderr
    validated = run_cli("validate", cwd=tmp_path / "p")
    assert validated.returncode != 0
    assert "cdn.openbsd.org is unreachable" in validated.stdout + validated.stderr
    # hermetic_network = false: the remote mirror stays possible
    assert _new(tmp_path / "open", "sets_location=http", "sets_http_server=cdn.openbsd.org",
                "hermetic_network=false").returncode == 0  # fmt: skip
    assert run_cli("lint", cwd=tmp_path / "open" / "p").returncode == 0


@pytest.mark.parametrize(
    ("variables", "builder", "message"),
    [
        (["ipv4=192.0.2.10/24"], "qemu", "variable ipv4_route: required with a static ipv4"),
        (["ipv4=192.0.2.10/25", "ipv4_route=192.0.2.200"], "qemu",
         "variable ipv4_route: route 192.0.2.200 is outside 192.0.2.0/25"),
        (["ipv4=192.0.2.10/24", "ipv4_route=192.0.2.1"], "openbsd-vmm",
         "--var ipv4: guest_ipv4: vmd gives the VM only its local /31"),
    ],
)  # fmt: skip
def test_bad_static_input_is_one_line_before_anything_is_written(tmp_path, variables,
                                                                  builder, message):  # fmt: skip
    made = _new(tmp_path, *variables, builder=builder)
    assert made.returncode != 0
    lines = made.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], made.stderr
    assert not (tmp_path / "p").exists()
