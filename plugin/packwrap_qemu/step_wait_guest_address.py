"""net_bridge without ssh_host: find the bridged guest's address as Packer does.

Packer's qemu builder (packer-plugin-qemu builder/qemu/step_wait_guest_address.go, read
at 9aa14cd) looks the guest NIC's MAC address up in the host's ARP table,
/proc/net/arp, on the bridge, taking only complete entries (flag ATF_COM, 0x02), and
polls until the communicator's timeout. It reads the MAC over QMP; packwrap gives the
NIC a MAC of its own choosing instead (random, in QEMU's 52:54:00 prefix, so two
builds on one bridge never share QEMU's default 52:54:00:12:34:56), which needs no QMP.
The host learns the entry when the guest talks to it (DHCP, the build's HTTP server).
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from packwrap.sdk import PackwrapError, State, Step
from packwrap_qemu.config import config_of

ARP_TABLE = Path("/proc/net/arp")
ATF_COM = 0x02  # linux/if_arp.h: the entry is complete
POLL_S = 2.0


def guest_mac() -> str:
    """A MAC in QEMU's own prefix (52:54:00), random below it."""
    tail = secrets.token_bytes(3)
    return "52:54:00:" + ":".join(f"{b:02x}" for b in tail)


def address_for(mac: str, bridge: str, table: str) -> str | None:
    """The IPv4 address of a complete ARP entry for mac on bridge, in /proc/net/arp's
    text ("IP address  HW type  Flags  HW address  Mask  Device" and one line each)."""
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 6 or fields[5] != bridge or fields[3].lower() != mac.lower():
            continue
        try:
            flags = int(fields[2], 0)
        except ValueError:
            continue
        if flags & ATF_COM:
            return fields[0]
    return None


def wants_address(state: State) -> bool:
    config = config_of(state)
    return bool(config.net_bridge) and config.communicator == "ssh" and not config.ssh_host


class StepWaitGuestAddress(Step):
    """Poll the ARP table for the bridged guest until the communicator's timeout."""

    name = "wait for guest address"

    def __init__(self, table: Path = ARP_TABLE) -> None:
        self.table = table

    def applies(self, state: State) -> bool:
        return wants_address(state)

    def run(self, state: State) -> None:
        config = config_of(state)
        bridge, mac = str(config.net_bridge), state.data["guest_mac"]
        timeout = float(config.ssh_timeout or 300.0)
        state.ui.say(
            f"Waiting for the guest address ({mac}) to become available in the {bridge} "
            "network bridge..."
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                address = address_for(mac, bridge, self.table.read_text())
            except OSError as exc:
                raise PackwrapError(f"cannot read {self.table}: {exc.strerror}") from None
            if address:
                state.ui.message(f"Found guest address {address}")
                state.data["ssh_host"] = address
                return
            if time.monotonic() >= deadline:
                raise PackwrapError(
                    f"no address for the guest ({mac}) in {self.table} on {bridge} after "
                    f"{timeout:.0f}s (ssh_timeout); set ssh_host if the host never talks to it"
                )
            state.sleep(POLL_S)
