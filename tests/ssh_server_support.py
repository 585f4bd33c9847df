"""A real SSH server on 127.0.0.1 for communicator tests (paramiko server mode).

Commands run as real host processes (`/bin/sh -c`) so scp uploads go through the
real `scp -t` sink, and the `sftp` subsystem is the real OpenSSH sftp-server; tests point
every path into their tmp dir.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import subprocess
import threading
from pathlib import Path

import paramiko

# Debian's openssh-sftp-server (scripts/setup installs it).
SFTP_SERVER = next(
    (p for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server") if Path(p).exists()),
    None,
)


class _Handler(paramiko.ServerInterface):
    def __init__(self, server: LoopbackSshServer):
        self.server = server
        self.command: bytes | None = None
        self.ready = threading.Event()

    def check_channel_request(self, kind, chanid):
        return (
            paramiko.OPEN_SUCCEEDED
            if kind == "session"
            else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        )

    def get_allowed_auths(self, username):
        return "publickey,password"

    def check_auth_password(self, username, password):
        self.server.auth_attempts += 1
        ok = self.server.password is not None and password == self.server.password
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        self.server.auth_attempts += 1
        allowed = self.server.authorized_key
        # a certificate (ssh_certificate_file) is offered as its own blob, the key inside it
        cert = key.public_blob
        offered = base64.b64encode(cert.key_blob).decode() if cert else key.get_base64()
        ok = allowed is not None and offered == allowed.split()[1]
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_forward_agent_request(self, channel):
        self.server.agent_requests += 1
        return True

    def check_channel_pty_request(self, channel, term, width, height, pw, ph, modes):
        self.server.pty_requests += 1
        return True

    def check_channel_direct_tcpip_request(self, chanid, origin, destination):
        # ssh -W / -L: the client asks the server to connect onwards (bastion, tunnels)
        if not self.server.forwarding:
            return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        self.server.direct[chanid] = destination
        return paramiko.OPEN_SUCCEEDED

    def check_port_forward_request(self, address, port):
        # ssh -R: listen here, hand each connection back to the client
        if not self.server.forwarding:
            return False
        return self.server.listen_for_client(self.transport, address, port)

    def check_channel_exec_request(self, channel, command):
        self.command = command
        self.ready.set()
        return True

    def check_channel_subsystem_request(self, channel, name):
        # The real OpenSSH sftp-server, run like any command: its stdio is the channel.
        if name != "sftp" or SFTP_SERVER is None:
            return False
        self.command = SFTP_SERVER.encode()
        self.ready.set()
        return True


class LoopbackSshServer:
    def __init__(
        self,
        *,
        authorized_key: str | None = None,
        password: str | None = None,
        forwarding: bool = False,
    ):
        self.forwarding = forwarding  # allow direct-tcpip and tcpip-forward (ssh -W/-L/-R)
        self.direct: dict[int, tuple[str, int]] = {}
        self.pty_requests = 0
        self.agent_requests = 0
        self.forward_listeners: list[socket.socket] = []
        self.authorized_key = authorized_key
        self.password = password
        self.host_key = paramiko.Ed25519Key.from_private_key_file(_host_key_file())
        self.auth_attempts = 0
        self.commands: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._transports: list[paramiko.Transport] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.host_key)
            self._transports.append(transport)
            handler = _Handler(self)
            handler.transport = transport
            try:
                transport.start_server(server=handler)
            except (paramiko.SSHException, EOFError, OSError):
                continue
            threading.Thread(target=self._sessions, args=(transport,), daemon=True).start()

    def _sessions(self, transport: paramiko.Transport) -> None:
        while transport.is_active() and not self._stop.is_set():
            channel = transport.accept(1)
            if channel is None:
                continue
            if channel.chanid in self.direct:
                threading.Thread(
                    target=_connect_onwards,
                    args=(channel, self.direct.pop(channel.chanid)),
                    daemon=True,
                ).start()
                continue
            handler = transport.server_object
            if not handler.ready.wait(10):
                channel.close()
                continue
            command = handler.command.decode()
            handler.ready.clear()
            self.commands.append(command)
            threading.Thread(target=self._exec, args=(channel, command), daemon=True).start()

    def _exec(self, channel: paramiko.Channel, command: str) -> None:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

        def pump_in() -> None:
            with contextlib.suppress(OSError, EOFError):
                while data := channel.recv(32768):
                    proc.stdin.write(data)
                    proc.stdin.flush()
            with contextlib.suppress(OSError):
                proc.stdin.close()

        threading.Thread(target=pump_in, daemon=True).start()
        try:
            while data := proc.stdout.read1(32768):
                channel.sendall(data)
            channel.send_exit_status(proc.wait())
            channel.close()
        except (OSError, EOFError, paramiko.SSHException):
            pass  # the client hung up first (the error tests do): end the command
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()

    def listen_for_client(self, transport: paramiko.Transport, address: str, port: int) -> bool:
        try:
            listener = socket.create_server(("127.0.0.1", port))
        except OSError:
            return False
        self.forward_listeners.append(listener)

        def accept() -> None:
            while True:
                try:
                    conn, peer = listener.accept()
                except OSError:
                    return
                channel = transport.open_forwarded_tcpip_channel(peer, (address, port))
                threading.Thread(target=_pump, args=(conn, channel), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return True

    def stop(self) -> None:
        self._stop.set()
        for listener in self.forward_listeners:
            with contextlib.suppress(OSError):
                listener.close()
        with contextlib.suppress(OSError):
            self._sock.close()
        for transport in self._transports:
            transport.close()


def _connect_onwards(channel: paramiko.Channel, destination: tuple[str, int]) -> None:
    try:
        conn = socket.create_connection(destination, timeout=5)
    except OSError:
        channel.close()
        return
    conn.settimeout(None)
    _pump(conn, channel)


def _pump(conn: socket.socket, channel: paramiko.Channel) -> None:
    import select

    try:
        while True:
            ready, _, _ = select.select([conn, channel], [], [], 1.0)
            for src in ready:
                data = src.recv(32768)
                if not data:
                    return
                (channel if src is conn else conn).sendall(data)
    except (OSError, EOFError):
        return
    finally:
        conn.close()
        channel.close()


_HOST_KEY: Path | None = None


def _host_key_file() -> str:
    """One Ed25519 host key per test session (made with the real ssh-keygen)."""
    global _HOST_KEY
    if _HOST_KEY is None:
        import tempfile

        directory = Path(tempfile.mkdtemp(prefix="packwrap-sshd-"))
        _HOST_KEY = directory / "host_ed25519"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(_HOST_KEY)], check=True
        )
    return str(_HOST_KEY)
