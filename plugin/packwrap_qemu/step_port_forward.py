"""Pick a loopback port forwarded to the guest's SSH port (communicator = "ssh")."""

from __future__ import annotations

import random
import socket
from typing import TYPE_CHECKING

from packwrap.sdk import PackwrapError, Step
from packwrap_qemu.config import config_of
from packwrap_qemu.step_wait_guest_address import guest_mac

if TYPE_CHECKING:
    from packwrap.sdk import State


def free_port(lo: int, hi: int) -> int:
    """A port in [lo, hi) that 127.0.0.1 can bind now (random start, like Packer)."""
    ports = list(range(lo, max(hi, lo + 1)))
    start = random.randrange(len(ports))
    for port in ports[start:] + ports[:start]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise PackwrapError(f"no free port for SSH forwarding in [{lo}, {hi})")


class StepPortForward(Step):
    name = "forward SSH port"

    def run(self, state: State) -> None:
        config = config_of(state)
        if config.net_bridge:
            # bridged: the guest has its own address (ssh_host, or found by its MAC:
            # step_wait_guest_address.py), no NAT to map
            state.data.setdefault("guest_mac", guest_mac())
            return
        if config.communicator != "ssh" or config.skip_nat_mapping:
            return
        port = free_port(config.host_port_min, config.host_port_max)
        state.data["ssh_host_port"] = port
        state.data["ssh_host"] = "127.0.0.1"
        state.data["ssh_port"] = port  # what StepConnect dials (the guest's side is ssh_port)
        state.ui.message(f"Forwarding 127.0.0.1:{port} to the guest's port {config.ssh_port}")
