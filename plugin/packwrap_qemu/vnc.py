"""The VNC display (Packer's stepConfigureVNC and the VNC part of stepConfigureQMP).

Packer opens a VNC server on a free port in [vnc_port_min, vnc_port_max] of
vnc_bind_address (127.0.0.1), with a password when vnc_use_password (vnc_password, or a
random 8 characters), and prints where to connect. Packer finds the port by listening
on it and closing it again before QEMU starts, which another process can take in
between; packwrap lets QEMU bind the first free display itself (`-vnc ADDR:N,to=M`), so
two parallel builds never race, and asks QEMU which port it got (query-vnc). The
password is set over QMP before the guest runs (change-vnc-password, as Packer).
packwrap types on the serial console; VNC is to watch the guest's screen.
"""

from __future__ import annotations

import secrets
import string
from typing import TYPE_CHECKING

from packwrap_qemu.config import QemuConfig

if TYPE_CHECKING:
    from packwrap.sdk import State
    from packwrap_qemu.driver import QemuProcess

VNC_BASE_PORT = 5900  # QEMU's display N listens on 5900 + N
MAX_PASSWORD = 8  # VNC's DES authentication reads 8 characters


def vnc_arg(config: QemuConfig, password: bool) -> str | None:
    """-vnc's value; None with disable_vnc."""
    if config.disable_vnc:
        return None
    host = config.vnc_bind_address
    host = f"[{host}]" if ":" in host else host
    first = config.vnc_port_min - VNC_BASE_PORT
    last = config.vnc_port_max - VNC_BASE_PORT
    arg = f"{host}:{first}" + (f",to={last}" if last > first else "")
    return arg + (",password=on" if password else "")


def password(config: QemuConfig) -> str:
    """vnc_password, or a random one (Packer's length); "" without vnc_use_password."""
    if not config.vnc_use_password or config.disable_vnc:
        return ""
    if config.vnc_password:
        return config.vnc_password
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(MAX_PASSWORD))


def configure(vm: QemuProcess, config: QemuConfig, state: State) -> None:
    """Once QEMU runs (paused): set the password, then say where to connect."""
    info = vm.qmp.execute("query-vnc")
    if not info.get("enabled") or not info.get("service"):
        return  # qemuargs replaced -vnc (e.g. "-vnc none")
    pw = state.data.get("vnc_password") or ""
    if pw:
        vm.qmp.execute("change-vnc-password", password=pw)
    host, port = info.get("host") or config.vnc_bind_address, info["service"]
    state.data["vnc_port"] = int(port)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    state.ui.message(f"Found available VNC port: {port} on IP: {host}")
    if pw and config.vnc_password:  # the user's: not printed
        state.ui.message(f"Connect to the VM via VNC to vnc://{address} with vnc_password")
    elif pw:  # a random one, printed as Packer does
        state.ui.message(f"Connect to the VM via VNC to vnc://{address} with the password: {pw}")
    else:
        state.ui.message(f"Connect to the VM via VNC without a password to vnc://{address}")
