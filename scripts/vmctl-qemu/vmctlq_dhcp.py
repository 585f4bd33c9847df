"""The supervisor's packet filter: vmd's DHCP answer, and the clashing-port rewrite.

1. Router, DNS server and next-server (siaddr) = the tap address in DHCP answers.

QEMU's filter-redirector sends every packet slirp delivers to the guest (queue=tx) to
a chardev as `<4-byte big-endian length><ethernet frame>`, and injects frames read
from a second chardev. The relay copies frames back unchanged, except slirp's DHCP
offers/acks, to which it adds option 3 (router) and option 6 (DNS) when missing:
slirp omits both under restrict=on, and OpenBSD's installer then asks
"Default IPv4 route?", which an autoinstall cannot answer (vmd would have offered it).

2. Ports slirp cannot forward (see vmctl's forward_ports): the guest's TCP packets to
tap:<port> get the stand-in port (queue=rx filter), and slirp's answers from
tap:<stand-in port> get <port> back, with the TCP checksum updated (RFC 1624).
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
from collections.abc import Callable

_COOKIE = b"\x63\x82\x53\x63"


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def patch_dhcp(frame: bytes, router: bytes, dns: bytes, next_server: bytes | None = None) -> bytes:
    """The frame with router/DNS options added if it is a DHCP answer lacking them, and
    its next-server (siaddr) set to `next_server` (vmd: always the tap address)."""
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
    moved = next_server is not None and bootp[20:24] != next_server
    if not extra and not moved:
        return frame
    if moved:
        bootp[20:24] = next_server
    bootp[end:end] = extra
    udp_len = 8 + len(bootp)
    ip_hdr = bytearray(frame[ip : ip + ihl])
    ip_hdr[2:4] = struct.pack("!H", ihl + udp_len)
    ip_hdr[10:12] = b"\0\0"
    ip_hdr[10:12] = struct.pack("!H", _checksum(bytes(ip_hdr)))
    udp_hdr = frame[udp : udp + 4] + struct.pack("!H", udp_len) + b"\0\0"  # no UDP checksum
    return frame[:14] + bytes(ip_hdr) + udp_hdr + bytes(bootp)


def remap_port(frame: bytes, host: bytes, ports: dict[int, int], *, inbound: bool) -> bytes:
    """Rewrite a TCP port of a frame to/from `host`: the destination port of the guest's
    packets (inbound=True), the source port of slirp's answers (inbound=False)."""
    if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00" or frame[14 + 9] != 6:
        return frame
    ip = 14
    tcp = ip + (frame[ip] & 0x0F) * 4
    addr = frame[ip + 16 : ip + 20] if inbound else frame[ip + 12 : ip + 16]
    at = tcp + 2 if inbound else tcp
    if addr != host or len(frame) < tcp + 18:
        return frame
    old = struct.unpack("!H", frame[at : at + 2])[0]
    new = ports.get(old)
    if new is None:
        return frame
    csum = struct.unpack("!H", frame[tcp + 16 : tcp + 18])[0]
    total = (~csum & 0xFFFF) + (~old & 0xFFFF) + new
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    out = bytearray(frame)
    out[at : at + 2] = struct.pack("!H", new)
    out[tcp + 16 : tcp + 18] = struct.pack("!H", ~total & 0xFFFF)
    return bytes(out)


def _read_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def relay(src: socket.socket, dst: socket.socket, transform: Callable[[bytes], bytes]) -> None:
    """Copy frames from a QEMU outdev to its indev through `transform`, until EOF."""
    try:
        while True:
            head = _read_exact(src, 4)
            if head is None:
                return
            frame = _read_exact(src, struct.unpack("!I", head)[0])
            if frame is None:
                return
            frame = transform(frame)
            dst.sendall(struct.pack("!I", len(frame)) + frame)
    except OSError:
        return


def slirp_to_guest(host: str, remap: dict[int, int]) -> Callable[[bytes], bytes]:
    addr = socket.inet_aton(host)
    back = {alt: port for port, alt in remap.items()}

    def transform(frame: bytes) -> bytes:
        patched = patch_dhcp(frame, addr, addr, addr)
        if patched is not frame:
            print(f"vmctl-qemu: DHCP answer: router/DNS/next-server {host}", file=sys.stderr)
        return remap_port(patched, addr, back, inbound=False) if back else patched

    return transform


def guest_to_slirp(host: str, remap: dict[int, int]) -> Callable[[bytes], bytes]:
    addr = socket.inet_aton(host)
    return lambda frame: remap_port(frame, addr, remap, inbound=True)


class FilterSockets:
    """Listening unix sockets for QEMU's filter chardevs (`<prefix>o<idx>` to read what
    QEMU diverts, `<prefix>i<idx>` to hand it back), one pair per filter."""

    def __init__(self, directory: str, idx: int, prefixes: tuple[str, ...] = ("",)):
        self.pairs = []
        for prefix in prefixes:
            pair = []
            for end in ("o", "i"):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.bind(f"{directory}/{prefix}{end}{idx}" if prefix else f"{directory}/{end}{idx}")
                s.listen(1)
                pair.append(s)
            self.pairs.append(pair)

    def start(self, transforms, alive, timeout: float = 30) -> None:
        """Accept QEMU's connections (made while it starts); relay each pair in a thread."""
        deadline = time.monotonic() + timeout
        for pair, transform in zip(self.pairs, transforms, strict=True):
            conns = []
            for s in pair:
                s.settimeout(0.2)
                while True:
                    try:
                        conn, _ = s.accept()
                        break
                    except TimeoutError:
                        if not alive() or time.monotonic() > deadline:
                            raise RuntimeError("QEMU did not connect its packet filter") from None
                conn.settimeout(None)
                conns.append(conn)
                s.close()
            threading.Thread(target=relay, args=(*conns, transform), daemon=True).start()
