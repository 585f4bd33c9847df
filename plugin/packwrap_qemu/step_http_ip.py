"""Decide where the guest finds the builder's HTTP server ({{ .HTTPIP }}, {{ .HTTPPort }}).

Hermetic: the guest sees <http_ip>:80 (10.0.2.100 for a DHCP guest), which a guestfwd
relays to the server on 127.0.0.1 (StepRunQemu). Otherwise the user network's host
address (Packer's 10.0.2.2) and the real port; QEMU's user network maps that address to
the host's loopback, so 127.0.0.1 suffices as bind address in both modes. A static guest
address (guest_ipv4) moves the whole user network into the guest's subnet (usernet.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from packwrap.sdk import (
    PackwrapError,
    Step,
    guest_network,
    interface_ipv4,
    requested_bind_address,
)
from packwrap_qemu import driver, usernet
from packwrap_qemu.config import config_of

if TYPE_CHECKING:
    from packwrap.sdk import State


def bridge_address(bridge: str) -> str:
    """The bridge's IPv4 address, where the bridged guest reaches the host (Packer's)."""
    return interface_ipv4(bridge, "net_bridge")


class StepHTTPIPDiscover(Step):
    name = "discover HTTP address"

    def run(self, state: State) -> None:
        config = config_of(state)
        untold = guest_network.untold_static_address(state.data.get("project_values") or {}, config)
        if untold:
            raise PackwrapError(untold)
        net = usernet.plan(guest_network.static_ipv4_of(config))  # validated by the schema
        state.data["user_net"] = net
        if net.net and not config.net_bridge:
            state.ui.message(f"user network {net.net}: host {net.host}, HTTP {net.http_ip}")
        bind = requested_bind_address(config) or "127.0.0.1"
        if config.hermetic_network:
            if bind not in ("127.0.0.1", "0.0.0.0"):
                asked = "http_interface" if config.http_interface else "http_bind_address"
                state.ui.error(
                    f"{asked} {bind} is ignored with hermetic_network: the guest "
                    "reaches the server through 127.0.0.1"
                )
                bind = "127.0.0.1"
            state.data["http_ip"] = net.http_ip
            state.data["http_guest_port"] = driver.HERMETIC_HTTP_PORT
        elif config.net_bridge:
            # Packer: the bridge's own address, where the bridged guest reaches the host
            state.data["http_ip"] = bridge_address(config.net_bridge)
            if bind == "127.0.0.1":
                bind = state.data["http_ip"]
        else:
            state.data["http_ip"] = net.host
        state.data["http_bind_address"] = bind
