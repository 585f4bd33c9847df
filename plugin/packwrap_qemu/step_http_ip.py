"""Decide where the guest finds the builder's HTTP server ({{ .HTTPIP }}, {{ .HTTPPort }}).

Hermetic: the guest sees 10.0.2.100:80, which a guestfwd relays to the server on
127.0.0.1 (StepRunQemu). Otherwise Packer's user-net address 10.0.2.2 and the real port;
QEMU's user network maps 10.0.2.2 to the host's loopback, so 127.0.0.1 suffices as bind
address in both modes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from packwrap.sdk import PackwrapError, Step
from packwrap_qemu import driver
from packwrap_qemu.config import config_of

if TYPE_CHECKING:
    from packwrap.sdk import State


def bridge_address(bridge: str) -> str:
    """The first IPv4 address of a host interface (`ip -j -4 addr show dev BRIDGE`)."""
    import json
    import subprocess

    proc = subprocess.run(
        ["ip", "-j", "-4", "addr", "show", "dev", bridge], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise PackwrapError(f"net_bridge {bridge}: {proc.stderr.strip() or 'ip failed'}")
    for link in json.loads(proc.stdout or "[]"):
        for addr in link.get("addr_info", []):
            if addr.get("family") == "inet":
                return str(addr["local"])
    raise PackwrapError(f"net_bridge {bridge} has no IPv4 address for the HTTP server")


class StepHTTPIPDiscover(Step):
    name = "discover HTTP address"

    def run(self, state: State) -> None:
        config = config_of(state)
        bind = config.get("http_bind_address") or "127.0.0.1"
        if config.hermetic_network:
            if bind not in ("127.0.0.1", "0.0.0.0"):
                state.ui.error(
                    f"http_bind_address {bind} is ignored with hermetic_network: the guest "
                    "reaches the server through 127.0.0.1"
                )
                bind = "127.0.0.1"
            state.data["http_ip"] = driver.HERMETIC_HTTP_IP
            state.data["http_guest_port"] = driver.HERMETIC_HTTP_PORT
        elif config.net_bridge:
            # Packer: the bridge's own address, where the bridged guest reaches the host
            state.data["http_ip"] = bridge_address(config.net_bridge)
            if bind == "127.0.0.1":
                bind = state.data["http_ip"]
        else:
            state.data["http_ip"] = driver.USERNET_HOST_IP
        state.data["http_bind_address"] = bind
