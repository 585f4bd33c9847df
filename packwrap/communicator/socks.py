"""A SOCKS5 CONNECT (RFC 1928, user/password RFC 1929): the socket for ssh_proxy_*."""

from __future__ import annotations

import socket
import struct


class SocksError(ConnectionError):
    """The proxy refused: an OSError, so the SSH wait retries it like a refused port."""


_REPLIES = {
    1: "general failure",
    2: "not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


def _recv(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise SocksError("SOCKS proxy closed the connection")
        data += chunk
    return data


def socks5_connect(
    proxy: tuple[str, int],
    target: tuple[str, int],
    *,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 10.0,
) -> socket.socket:
    """A TCP socket to `target` through the SOCKS5 proxy; the proxy resolves the name."""
    sock = socket.create_connection(proxy, timeout=timeout)
    try:
        methods = b"\x00\x02" if username else b"\x00"
        sock.sendall(b"\x05" + bytes([len(methods)]) + methods)
        version, method = _recv(sock, 2)
        if version != 5 or method == 0xFF:
            raise SocksError(f"SOCKS proxy {proxy[0]}:{proxy[1]} accepts no offered method")
        if method == 2:
            user, pw = (username or "").encode(), (password or "").encode()
            sock.sendall(b"\x01" + bytes([len(user)]) + user + bytes([len(pw)]) + pw)
            if _recv(sock, 2)[1] != 0:
                raise SocksError(f"SOCKS proxy {proxy[0]}:{proxy[1]}: authentication failed")
        host = target[0].encode()
        sock.sendall(b"\x05\x01\x00\x03" + bytes([len(host)]) + host + struct.pack(">H", target[1]))
        _, reply, _, atyp = _recv(sock, 4)
        # the bound address: IPv4, IPv6, or a name with its length first; then the port
        size = {1: 4, 4: 16}.get(atyp) or _recv(sock, 1)[0]
        _recv(sock, size + 2)
        if reply != 0:
            why = _REPLIES.get(reply, f"reply {reply}")
            raise SocksError(f"SOCKS proxy: cannot reach {target[0]}:{target[1]}: {why}")
        sock.settimeout(None)
        return sock
    except BaseException:
        sock.close()
        raise
