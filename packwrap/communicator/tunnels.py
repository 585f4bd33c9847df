"""ssh_local_tunnels and ssh_remote_tunnels ("port:host:hostport", Packer's form) over the
provisioning SSH session, like `ssh -L` and `ssh -R`; each lives as long as the session."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from typing import Any


def _pump(a: Any, b: Any) -> None:
    """Copy both ways between a socket and a channel until either side closes."""
    try:
        while True:
            ready, _, _ = select.select([a, b], [], [], 1.0)
            for src in ready:
                data = src.recv(32768)
                if not data:
                    return
                (b if src is a else a).sendall(data)
    except (OSError, EOFError):
        return
    finally:
        for end in (a, b):
            with contextlib.suppress(OSError, EOFError):
                end.close()


def _spawn(target: Any, *args: Any) -> None:
    threading.Thread(target=target, args=args, name="ssh-tunnel", daemon=True).start()


class Tunnels:
    """The session's forwards; `close` ends the listeners (the transport ends the rest)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.listeners: list[socket.socket] = []
        self.remote_ports: list[int] = []

    def local(self, port: int, host: str, hostport: int) -> None:
        """Listen on localhost:port; each connection opens a channel to host:hostport as
        the guest sees it."""
        listener = socket.create_server(("127.0.0.1", port))
        self.listeners.append(listener)

        def accept() -> None:
            while True:
                try:
                    conn, peer = listener.accept()
                except OSError:
                    return
                try:
                    channel = self.transport.open_channel("direct-tcpip", (host, hostport), peer)
                except Exception:  # noqa: BLE001 - the guest refused: drop this connection
                    conn.close()
                    continue
                _spawn(_pump, conn, channel)

        _spawn(accept)

    def remote(self, port: int, host: str, hostport: int) -> None:
        """The guest listens on localhost:port; each connection reaches host:hostport as
        this host sees it."""

        def handler(channel: Any, _origin: Any, _server: Any) -> None:
            try:
                conn = socket.create_connection((host, hostport), timeout=10)
            except OSError:
                channel.close()
                return
            conn.settimeout(None)
            _spawn(_pump, conn, channel)

        self.transport.request_port_forward("localhost", port, handler)
        self.remote_ports.append(port)

    def close(self) -> None:
        for listener in self.listeners:
            with contextlib.suppress(OSError):
                listener.close()
        for port in self.remote_ports:
            with contextlib.suppress(Exception):
                self.transport.cancel_port_forward("localhost", port)
