"""Lint that knows the network: do the servers a response file names fit the builder's?

The installer configures the answered address and route, then fetches the disklabel
template, the sets (and the site set) from the servers the file names. Checked here,
each finding on its line with a fix:
- the static address and its route (one rule: packwrap/build/guest_network.py);
- a server the guest cannot reach from its static address (an IPv4 literal outside its
  network with no route; the build's own server behind vmd's /31);
- on a hermetic network (QEMU, restrict=on) anything but the build's own server, and an
  HTTP proxy.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from packwrap.autoinstall.findings import Finding
from packwrap.autoinstall.matching import has_template
from packwrap.autoinstall.simulate import Consumption, InstallContext, SimResult
from packwrap.build.guest_network import StaticIPv4, parse_static_ipv4, vmd_problem

#: Answers that name a server: the URL or host the installer fetches from.
_SERVER_ANSWERS = ("disklabel_template", "http_server", "response_file")
_HOST = re.compile(r"^(?:[a-z]+://)?(\[[^\]]*\]|[^/:]+)", re.I)

_LOCAL_SETS_FIX = (
    "fix: fetch the sets into the cache (`packwrap fetch-iso --sets`) and leave "
    "sets_http_server empty, so the build serves them itself, or set hermetic_network = false"
)


def _host(value: str) -> str:
    m = _HOST.match(value.strip())
    return m.group(1).strip("[]") if m else ""


def _answers(res: SimResult, prompt_id: str) -> Iterator[Consumption]:
    for _line, c in sorted(res.consumed.items()):
        if c.prompt.id == prompt_id:
            yield c


def _first(res: SimResult, prompt_id: str) -> Consumption | None:
    return next(_answers(res, prompt_id), None)


def _static(res: SimResult) -> tuple[StaticIPv4 | None, list[Finding]]:
    """The answered static address, or the finding that says why it is unusable."""
    address = _first(res, "ipv4_address")
    if address is None:
        return None, []
    netmask = _first(res, "ipv4_netmask")
    route = _first(res, "ipv4_route")
    value = address.entry.value.strip()
    if "{{" in value:
        return None, []
    try:
        static = parse_static_ipv4(
            value,
            netmask.entry.value if netmask else "",
            route.entry.value if route else "",
        )
    except ValueError as exc:
        line = route.entry.line if route and "route" in str(exc) else address.entry.line
        fix = (
            "fix: answer 'Default IPv4 route' with an address inside the network (or "
            "'none'), or widen the netmask to contain the route"
        )
        return None, [Finding(line, "error", f"{exc}; {fix}")]
    return static, []


def _in_qemu_default_network(host: str) -> bool:
    """QEMU's user network for a DHCP guest (10.0.2.0/24: the guestfwd of a hermetic
    build, 10.0.2.100, is there; plugin/packwrap_qemu/usernet.py)."""
    try:
        return ipaddress.IPv4Address(host) in ipaddress.IPv4Network("10.0.2.0/24")
    except ValueError:
        return False


def _is_build_server(host: str, ctx: InstallContext) -> bool:
    return has_template(host) or host in {_host(s) for s in ctx.docroot_servers}


def network_findings(res: SimResult, ctx: InstallContext) -> list[Finding]:
    static, findings = _static(res)
    servers = [c for pid in _SERVER_ANSWERS for c in _answers(res, pid)]
    for c in servers:
        value = c.entry.value.strip()
        host = _host(value)
        if not host or host == "done":
            continue
        if _is_build_server(host, ctx):
            if static and "openbsd-vmm" in ctx.builders and (why := vmd_problem(static)):
                findings.append(
                    Finding(c.entry.line, "error", f"openbsd-vmm: {value} unreachable: {why}")
                )
            continue
        if ctx.hermetic and _in_qemu_default_network(host):
            findings.append(
                Finding(
                    c.entry.line,
                    "warning",
                    f"{host}: the build's address on QEMU's default user network, but it moves "
                    "with a static guest address; write {{ .HTTPIP }}:{{ .HTTPPort }}",
                )
            )
        elif ctx.hermetic:
            findings.append(
                Finding(
                    c.entry.line,
                    "error",
                    f"{host} is unreachable on the hermetic network (the guest reaches only "
                    f"the build's HTTP server, {{{{ .HTTPIP }}}}:{{{{ .HTTPPort }}}}); "
                    + (
                        _LOCAL_SETS_FIX
                        if c.prompt.id == "http_server"
                        else "fix: serve it "
                        "from the build's http_directory, or set hermetic_network = false"
                    ),
                )  # fmt: skip
            )
        elif static and not static.reaches(host):
            findings.append(
                Finding(
                    c.entry.line,
                    "error",
                    f"{host} is outside the guest's network {static.network} and there is no "
                    "default route; fix: answer 'Default IPv4 route' or use a server in "
                    f"{static.network}",
                )
            )
    proxy = _first(res, "http_proxy")
    if proxy and ctx.hermetic and proxy.entry.value.strip() not in ("none", ""):
        findings.append(
            Finding(
                proxy.entry.line,
                "error",
                f"HTTP proxy {proxy.entry.value.strip()} is unreachable on the hermetic "
                "network; fix: 'HTTP proxy URL = none' with the build's own sets "
                "(`packwrap fetch-iso --sets`), or set hermetic_network = false",
            )
        )
    return findings
