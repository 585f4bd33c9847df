"""QEMU's user network (slirp) laid out for the guest's address.

With DHCP the guest lives in QEMU's default 10.0.2.0/24: the host (the user network's
gateway, and the host's loopback) is 10.0.2.2, the hermetic HTTP address 10.0.2.100.
With a static address (guest_ipv4) the installer drops its DHCP lease and then fetches
the disklabel template and the sets; so the user network becomes the guest's own subnet:
`net=` that network, `host=` the guest's route, `dns=`, `dhcpstart=` and the hermetic
HTTP address (a guestfwd) on free addresses of the same subnet. Slirp refuses a guestfwd
on the host or DNS address, hence four distinct addresses besides the guest's.
"""

from __future__ import annotations

from dataclasses import dataclass

from packwrap.sdk import guest_network


@dataclass(frozen=True)
class UserNet:
    """The addresses of one user network; `net` None keeps QEMU's defaults."""

    net: str | None
    host: str
    dns: str | None
    dhcpstart: str | None
    http_ip: str  # the hermetic guestfwd address

    def options(self) -> list[str]:
        """`-netdev user` options for this layout (none for QEMU's default layout)."""
        if self.net is None:
            return []
        return [
            f"net={self.net}",
            f"host={self.host}",
            f"dns={self.dns}",
            f"dhcpstart={self.dhcpstart}",
        ]


DEFAULT = UserNet(net=None, host="10.0.2.2", dns=None, dhcpstart=None, http_ip="10.0.2.100")


def plan(static: guest_network.StaticIPv4 | None) -> UserNet:
    """The user network for this guest; ValueError when its subnet has no room for it."""
    if static is None:
        return DEFAULT
    taken = {static.address, static.route}
    free = (ip for ip in static.network.hosts() if ip not in taken)
    host = static.route or next(free, None)
    picked = [next(free, None) for _ in range(3)]
    if host is None or None in picked:
        raise ValueError(
            f"{static.interface}: QEMU's user network needs 4 more addresses in the guest's "
            "subnet (host, DNS, DHCP, HTTP): use a /29 or larger network"
        )
    dns, http_ip, dhcpstart = (str(ip) for ip in picked)
    return UserNet(
        net=str(static.network), host=str(host), dns=dns, dhcpstart=dhcpstart, http_ip=http_ip
    )
