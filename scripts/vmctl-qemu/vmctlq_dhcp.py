"""Give the guest vmd's DHCP answer: router and DNS server = the tap address.

QEMU's filter-redirector sends every packet slirp delivers to the guest (queue=tx) to
a chardev as `<4-byte big-endian length><ethernet frame>`, and injects frames read
from a second chardev. The relay copies frames back unchanged, except slirp's DHCP
offers/acks, to which it adds option 3 (router) and option 6 (DNS) when missing:
slirp omits both under restrict=on, and OpenBSD's installer then asks
"Default IPv4 route?", which an autoinstall cannot answer (vmd would have offered it).
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time

_COOKIE = b"\x63\x82\x53\x63"


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def patch_dhcp(frame: bytes, router: bytes, dns: bytes) -> bytes:
    """The frame with router/DNS options added if it is a DHCP answer lacking them."""
    if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":
        return frame
    ihl = (frame[14] & 0x0F) * 4
    ip = 14
    if frame[ip + 9] != 17:  # UDP
        return frame
    udp = ip + ihl
    if frame[udp : udp + 2] != b"\x00\x43":  # source port 67: a DHCP server's answer
        return frame
    total = struct.unpack("!H", frame[ip + 2 : ip + 4])[0]
    bootp = bytearray(frame[udp + 8 : ip + total])
    if len(bootp) < 240 or bootp[236:240] != _COOKIE:
        return frame
    pos, present, end = 240, set(), None
    while pos < len(bootp):
        code = bootp[pos]
        if code == 0:
            pos += 1
            continue
        if code == 255:
            end = pos
            break
        present.add(code)
        pos += 2 + bootp[pos + 1]
    if end is None:
        return frame
    extra = b""
    if 3 not in present:
        extra += b"\x03\x04" + router
    if 6 not in present:
        extra += b"\x06\x04" + dns
    if not extra:
        return frame
    bootp[end:end] = extra
    udp_len = 8 + len(bootp)
    ip_hdr = bytearray(frame[ip : ip + ihl])
    ip_hdr[2:4] = struct.pack("!H", ihl + udp_len)
    ip_hdr[10:12] = b"\0\0"
    ip_hdr[10:12] = struct.pack("!H", _checksum(bytes(ip_hdr)))
    udp_hdr = frame[udp : udp + 4] + struct.pack("!H", udp_len) + b"\0\0"  # no UDP checksum
    return frame[:14] + bytes(ip_hdr) + udp_hdr + bytes(bootp)


def _read_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def relay(src: socket.socket, dst: socket.socket, router: str, dns: str) -> None:
    """Copy frames from QEMU's outdev to its indev, patching DHCP answers, until EOF."""
    r, d = socket.inet_aton(router), socket.inet_aton(dns)
    try:
        while True:
            head = _read_exact(src, 4)
            if head is None:
                return
            frame = _read_exact(src, struct.unpack("!I", head)[0])
            if frame is None:
                return
            patched = patch_dhcp(frame, r, d)
            if patched is not frame:
                print(f"vmctl-qemu: DHCP answer: added router/DNS {router}", file=sys.stderr)
            frame = patched
            dst.sendall(struct.pack("!I", len(frame)) + frame)
    except OSError:
        return


class FilterSockets:
    """The two listening unix sockets QEMU's chardevs connect to, for interface idx."""

    def __init__(self, directory: str, idx: int):
        self.paths = (f"{directory}/o{idx}", f"{directory}/i{idx}")
        self.listeners = []
        for path in self.paths:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(path)
            s.listen(1)
            self.listeners.append(s)

    def start(self, router: str, dns: str, alive, timeout: float = 30) -> None:
        """Accept QEMU's two connections (made while it starts) and relay in a thread."""
        conns = []
        deadline = time.monotonic() + timeout
        for s in self.listeners:
            s.settimeout(0.2)
            while True:
                try:
                    conn, _ = s.accept()
                    break
                except TimeoutError:
                    if not alive() or time.monotonic() > deadline:
                        raise RuntimeError("QEMU did not connect its network filter") from None
            conn.settimeout(None)
            conns.append(conn)
            s.close()
        threading.Thread(target=relay, args=(conns[0], conns[1], router, dns), daemon=True).start()
