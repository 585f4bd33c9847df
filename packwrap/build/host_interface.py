"""A host network interface's IPv4 address (http_interface, qemu's net_bridge).

Read with the SIOCGIFADDR ioctl: no child process, and the same answer `ip -4 addr`
gives for the interface's primary address.
"""

from __future__ import annotations

import errno
import fcntl
import socket
import struct

from packwrap.errors import PackwrapError

_SIOCGIFADDR = 0x8915  # linux/sockios.h


def interface_ipv4(name: str, option: str) -> str:
    """The interface's (first) IPv4 address; one-line error naming `option` and the
    interface when it does not exist or has none."""
    try:
        socket.if_nametoindex(name)
    except OSError:
        raise PackwrapError(f"{option} {name!r}: no such network interface") from None
    request = struct.pack("256s", name.encode()[:15])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            reply = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise PackwrapError(f"{option} {name!r} has no IPv4 address") from None
            raise PackwrapError(f"{option} {name!r}: {exc.strerror}") from None
    return socket.inet_ntoa(reply[20:24])
