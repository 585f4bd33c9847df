"""The guest's static IPv4 address and default route: one rule for builders, render and lint.

The installer configures a static address before it fetches the disklabel template and
the sets, so the builder must put its HTTP server where that address can reach it. The
builders learn the address from packwrap-only options (`guest_ipv4`, `guest_ipv4_netmask`,
`guest_ipv4_route`, the blueprint passes its `ipv4*` variables); the response-file
renderer and lint use the same parser for the same answers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from packwrap.config.schema import STRING, Config, Option

#: Answers to "IPv4 address for vio0?" that are not a static address.
NOT_STATIC = ("", "a", "autoconf", "dhcp", "none")
DEFAULT_NETMASK = "255.255.255.0"  # install.sub's default for "Netmask for vio0?"


@dataclass(frozen=True)
class StaticIPv4:
    """A static address with its network, and the default route (None: 'none')."""

    interface: ipaddress.IPv4Interface
    route: ipaddress.IPv4Address | None

    @property
    def address(self) -> ipaddress.IPv4Address:
        return self.interface.ip

    @property
    def network(self) -> ipaddress.IPv4Network:
        return self.interface.network

    def reaches(self, host: str) -> bool:
        """Whether a server at `host` (an IPv4 literal) is on the guest's own network, or
        reachable through its default route (any address then, as far as the guest knows)."""
        try:
            ip = ipaddress.IPv4Address(host)
        except ValueError:
            return True  # a name: not decidable here
        return ip in self.network or self.route is not None


def parse_static_ipv4(address: str, netmask: str = "", route: str = "") -> StaticIPv4 | None:
    """None for DHCP/none; else the address, its network and route. ValueError (a one-line
    message naming the value) for an unusable address, netmask or route."""
    address, netmask, route = address.strip(), netmask.strip(), route.strip()
    if address in NOT_STATIC:
        return None
    try:
        if "/" in address:
            interface = ipaddress.IPv4Interface(address)
        else:
            interface = ipaddress.IPv4Interface(f"{address}/{netmask or DEFAULT_NETMASK}")
    except ValueError:
        shown = address if "/" in address or not netmask else f"{address} netmask {netmask}"
        raise ValueError(f"{shown!r} is not an IPv4 address with a netmask") from None
    if interface.network.prefixlen < 31 and interface.ip in (
        interface.network.network_address,
        interface.network.broadcast_address,
    ):
        raise ValueError(f"{address!r} is the network or broadcast address of {interface.network}")
    if not route:
        raise ValueError(
            f"static address {interface} needs a default route: an address in "
            f"{interface.network}, or 'none'"
        )
    if route == "none":
        return StaticIPv4(interface, None)
    try:
        gateway = ipaddress.IPv4Address(route)
    except ValueError:
        raise ValueError(f"route {route!r} is not an IPv4 address or 'none'") from None
    if gateway not in interface.network:
        raise ValueError(
            f"route {gateway} is outside {interface.network} (address {interface.ip} netmask "
            f"{interface.netmask}): the netmask must contain the route"
        )
    if gateway == interface.ip:
        raise ValueError(f"route {gateway} is the guest's own address")
    return StaticIPv4(interface, gateway)


#: vmctl(8) LOCAL INTERFACES: vm.conf(5)'s default `local prefix`; each VM gets a /31
#: (host tap 100.64.<id>.2, guest .3).
VMD_LOCAL_PREFIX = ipaddress.IPv4Network("100.64.0.0/10")


def vmd_problem(static: StaticIPv4) -> str | None:
    """Why a static address cannot reach the build's HTTP server on vmd's tap, or None."""
    if (
        static.address in VMD_LOCAL_PREFIX
        and static.network.prefixlen == 31
        and int(static.address) % 2 == 1
        and static.route == static.address - 1
    ):
        return None
    return (
        f"vmd gives the VM only its local /31 (100.64.<vm id>.3/31, route 100.64.<vm id>.2, "
        f"the tap where the build's HTTP server listens), so {static.interface} cannot reach "
        "it; answer ipv4 = autoconf (vmd's DHCP) for the install and write the static "
        "address with a site set or a provisioner, or use the VM's /31 address with its tap "
        "as route"
    )


# --- builder options -------------------------------------------------------------------

OPTIONS = [
    Option(
        "guest_ipv4",
        STRING,
        None,
        help="packwrap: the installer's static IPv4 address (a.b.c.d/len or with "
        "guest_ipv4_netmask); empty/autoconf = DHCP. The builder places its HTTP server "
        "where this address reaches it.",
    ),
    Option("guest_ipv4_netmask", STRING, None, help="packwrap: netmask for guest_ipv4."),
    Option("guest_ipv4_route", STRING, None, help="packwrap: default route for guest_ipv4."),
]


def static_ipv4_of(config: Config) -> StaticIPv4 | None:
    """The config's static address (the check below has already rejected a bad one)."""
    return parse_static_ipv4(
        config.get("guest_ipv4") or "",
        config.get("guest_ipv4_netmask") or "",
        config.get("guest_ipv4_route") or "",
    )


def untold_static_address(values: Mapping[str, Any], config: Config) -> str | None:
    """Why a blueprint project's answered static address (its `ipv4*` variables) will not
    be reachable: the source does not pass it as guest_ipv4 (a template written before the
    option existed, or edited). None when they agree."""
    try:
        answered = parse_static_ipv4(
            str(values.get("ipv4") or ""),
            str(values.get("ipv4_netmask") or ""),
            str(values.get("ipv4_route") or ""),
        )
    except ValueError:
        return None  # the response file's renderer refuses it with its own line
    if answered is None or answered == static_ipv4_of(config):
        return None
    return (
        f"install.conf answers the static address {answered.interface}, but the source does "
        "not pass it to the builder, whose HTTP server would then be out of its reach: add "
        "guest_ipv4 = var.ipv4, guest_ipv4_netmask = var.ipv4_netmask and guest_ipv4_route = "
        "var.ipv4_route to the source block"
    )


def check(config: Config, problem: Callable[[str, str | None], None]) -> None:
    try:
        static_ipv4_of(config)
    except ValueError as exc:
        where = "guest_ipv4_route" if "route" in str(exc) else "guest_ipv4"
        problem(f"{where}: {exc}", where)


CHECKS = [check]
