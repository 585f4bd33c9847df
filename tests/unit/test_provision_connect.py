"""SSH connect rules for the provisioning boot (real sockets on 127.0.0.1, no mocks)."""

from __future__ import annotations

import socket
import threading

import pytest

from packwrap.communicator.ssh import SshCommunicator, SshSettings
from packwrap.errors import PackwrapError


class ClosingListener:
    """Accepts and closes at once, as QEMU's hostfwd does while the guest still boots."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()
        self.thread.join(2)


def test_a_port_that_closes_before_any_banner_is_not_a_handshake_attempt():
    listener = ClosingListener()
    try:
        settings = SshSettings(host="127.0.0.1", port=listener.port, timeout=2.5,
                               handshake_attempts=1)  # fmt: skip
        with pytest.raises(PackwrapError, match=r"timeout waiting for SSH .* after 2s"):
            SshCommunicator.connect(settings, cancel=threading.Event())
        assert listener.accepted >= 2  # kept trying past the one allowed handshake
    finally:
        listener.close()


def test_a_server_that_is_not_ssh_counts_as_a_failed_handshake():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    port = sock.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.sendall(b"SSH-2.0-x\r\n" + b"\x00" * 64)  # a banner, then garbage
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        settings = SshSettings(host="127.0.0.1", port=port, timeout=30, handshake_attempts=2)
        with pytest.raises(PackwrapError, match="failed after 2 handshake attempts"):
            SshCommunicator.connect(settings, cancel=threading.Event())
    finally:
        sock.close()
