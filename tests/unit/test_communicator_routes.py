"""Packer's SSH options beyond host/user/key, against a real SSH server on loopback:
ssh_bastion_*, ssh_proxy_* (a SOCKS5 proxy in the test), ssh_local/remote_tunnels,
ssh_ciphers, ssh_key_exchange_algorithms, temporary_key_pair_type/bits."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from pathlib import Path

import pytest
from packwrap_qemu.builder import QemuBuilder
from packwrap_vmm.builder import VmmBuilder

from packwrap.communicator.keys import make_temporary_key_pair
from packwrap.communicator.ssh import JumpHost, SocksProxy, SshCommunicator, SshSettings
from packwrap.communicator.steps import open_tunnels, ssh_settings
from packwrap.config.schema import SourceBody
from packwrap.errors import PackwrapError
from tests.ssh_server_support import LoopbackSshServer
from tests.state_support import make_state


@pytest.fixture
def keypair(tmp_path: Path):
    return make_temporary_key_pair(tmp_path / "key")


@pytest.fixture
def server(keypair):
    srv = LoopbackSshServer(authorized_key=keypair.public_key, password="s3cret", forwarding=True)
    try:
        yield srv
    finally:
        srv.stop()


def settings(port: int, keypair, **kw) -> SshSettings:
    base = SshSettings(host="127.0.0.1", port=port, private_key_file=keypair.private_key_file,
                       timeout=15, handshake_attempts=2)  # fmt: skip
    for key, value in kw.items():
        setattr(base, key, value)
    return base


def connect(s: SshSettings) -> SshCommunicator:
    return SshCommunicator.connect(s, cancel=threading.Event())


def run(comm: SshCommunicator, command: str) -> tuple[int, list[str]]:
    out: list[str] = []
    return comm.run(command, on_output=out.append), out


def prepare(builder, **values):
    body = SourceBody(
        {"communicator": "ssh", "ssh_username": "root", **values}, file="t.pkr.hcl", line=1
    )
    if builder is QemuBuilder:
        body = SourceBody({"kernel": "bsd", **body.values}, file="t.pkr.hcl", line=1)
    else:
        vmm = {"boot": "bsd.rd", "vm_name": "v", "output_directory": "o", "disk_size": "1G"}
        body = SourceBody({**vmm, **body.values}, file="t.pkr.hcl", line=1)
    return builder.schema.prepare(body)


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("builder", [QemuBuilder, VmmBuilder])
def test_ssh_options_are_core_options_of_both_builders(builder, tmp_path):
    key = tmp_path / "k"
    key.write_text("x")
    config, problems, _ = prepare(
        builder,
        ssh_bastion_host="jump",
        ssh_private_key_file=str(key),
        ssh_local_tunnels=["8080:localhost:80"],
        ssh_ciphers=["aes256-ctr"],
        temporary_key_pair_type="rsa",
        temporary_key_pair_bits=2048,
    )
    assert problems == [], problems
    # Packer: the bastion takes the session's key when it has none of its own
    assert config.ssh_bastion_private_key_file == str(key)
    assert config.ssh_bastion_port == 22 and config.ssh_proxy_port == 1080


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ssh_bastion_host": "j"}, "ssh_bastion_password, ssh_bastion_private_key_file or"),
        (
            {"ssh_bastion_host": "j", "ssh_bastion_password": "p", "ssh_proxy_host": "s"},
            "either ssh_bastion_host or ssh_proxy_host",
        ),
        ({"ssh_local_tunnels": ["80"]}, "ssh_local_tunnels '80': expected port:host:hostport"),
        ({"ssh_remote_tunnels": ["x:h:1"]}, "ssh_remote_tunnels 'x:h:1'"),
        ({"temporary_key_pair_type": "ecdsa", "temporary_key_pair_bits": 300}, "256, 384 or 521"),
        ({"temporary_key_pair_type": "rsa", "temporary_key_pair_bits": 512}, "at least 1024"),
        ({"temporary_key_pair_type": "dsa"}, "no longer take DSA keys"),
        ({"temporary_key_pair_type": "rsa2"}, "'rsa2' is not one of dsa, ecdsa, ed25519, rsa"),
        ({"communicator": "winrm"}, 'OpenBSD has no WinRM service: use communicator = "ssh"'),
    ],
)
def test_bad_ssh_options_are_one_problem_each(values, message):
    _, problems, _ = prepare(QemuBuilder, **values)
    assert len(problems) == 1 and message in problems[0].message, problems


def test_ssh_wait_timeout_is_the_older_name_and_wins():
    config, problems, _ = prepare(QemuBuilder, ssh_wait_timeout="7m")
    assert problems == [] and config.ssh_timeout == 420.0
    config, problems, _ = prepare(QemuBuilder, ssh_timeout="1m", ssh_wait_timeout="2m")
    assert problems == [] and config.ssh_timeout == 120.0


def test_winrm_options_load_with_a_warning():
    _, problems, warnings = prepare(QemuBuilder, winrm_username="a", winrm_use_ssl=True)
    assert problems == []
    assert "option 'winrm_username' is accepted but has no effect" in warnings


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    ("kind", "bits", "prefix"),
    [("rsa", 1024, "ssh-rsa"), ("ecdsa", 256, "ecdsa-sha2-nistp256"),
     ("ecdsa", None, "ecdsa-sha2-nistp521"), (None, None, "ssh-ed25519")],
)  # fmt: skip
def test_temporary_key_pair_type_and_bits(tmp_path, kind, bits, prefix):
    from packwrap.communicator.ssh import _load_key

    pair = make_temporary_key_pair(tmp_path, kind=kind, bits=bits)
    assert pair.public_key.startswith(prefix + " ")
    assert pair.private_key_file.stat().st_mode & 0o777 == 0o600
    loaded = _load_key(pair.private_key_file, "ssh_private_key_file")  # what connect reads
    assert loaded.get_base64() == pair.public_key.split()[1]


def test_rsa_temporary_key_authorizes(tmp_path):
    pair = make_temporary_key_pair(tmp_path, kind="rsa", bits=1024)
    srv = LoopbackSshServer(authorized_key=pair.public_key)
    try:
        comm = connect(settings(srv.port, pair))
        assert run(comm, "echo ok") == (0, ["ok"])
        comm.close()
    finally:
        srv.stop()


# --------------------------------------------------------------------------- algorithms


def test_ssh_ciphers_and_kex_are_the_only_ones_offered(server, keypair):
    comm = connect(
        settings(server.port, keypair, ciphers=("aes256-ctr",), kex=("ecdh-sha2-nistp256",))
    )
    try:
        transport = comm.transport()
        assert transport.local_cipher == "aes256-ctr"
        assert tuple(transport.preferred_ciphers) == ("aes256-ctr",)
        assert tuple(transport.preferred_kex) == ("ecdh-sha2-nistp256",)
    finally:
        comm.close()


def test_unknown_cipher_is_named():
    s = SshSettings(host="127.0.0.1", port=1, ciphers=("rot13",), timeout=2)
    with pytest.raises(PackwrapError, match=r"ssh_ciphers: 'rot13' is not supported"):
        connect(s)


# --------------------------------------------------------------------------- bastion, proxy


def test_bastion_carries_the_session(keypair):
    target = LoopbackSshServer(authorized_key=keypair.public_key)
    jump = LoopbackSshServer(password="jump-pw", forwarding=True)
    try:
        bastion = JumpHost(host="127.0.0.1", port=jump.port, username="u", password="jump-pw")
        comm = connect(settings(target.port, keypair, bastion=bastion))
        assert run(comm, "echo via-bastion") == (0, ["via-bastion"])
        comm.close()
        assert jump.auth_attempts == 1 and target.commands == ["echo via-bastion"]
    finally:
        jump.stop()
        target.stop()


class Socks5Server:
    """A minimal SOCKS5 server (no auth, or user/password) for the proxy test."""

    def __init__(self, user: str | None = None, password: str | None = None) -> None:
        self.user, self.password = user, password
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.targets: list[tuple[str, int]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            _, n = conn.recv(2)
            methods = conn.recv(n)
            if self.user:
                assert 2 in methods
                conn.sendall(b"\x05\x02")
                _, ulen = conn.recv(2)
                user = conn.recv(ulen).decode()
                plen = conn.recv(1)[0]
                pw = conn.recv(plen).decode()
                ok = (user, pw) == (self.user, self.password)
                conn.sendall(b"\x01" + (b"\x00" if ok else b"\x01"))
                if not ok:
                    conn.close()
                    return
            else:
                conn.sendall(b"\x05\x00")
            _, cmd, _, atyp = conn.recv(4)
            host = conn.recv(conn.recv(1)[0]).decode()
            (port,) = struct.unpack(">H", conn.recv(2))
            self.targets.append((host, port))
            onward = socket.create_connection((host, port))
            conn.sendall(b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1") + b"\x00\x00")
            from tests.ssh_server_support import _pump

            class Chan:  # the pump's channel side, as a plain socket
                def __init__(self, s):
                    self.s = s

                def fileno(self):
                    return self.s.fileno()

                def recv(self, n):
                    return self.s.recv(n)

                def sendall(self, d):
                    self.s.sendall(d)

                def close(self):
                    self.s.close()

            _pump(conn, Chan(onward))

    def stop(self) -> None:
        self.sock.close()


def test_socks_proxy_with_password_carries_the_session(server, keypair):
    proxy = Socks5Server("pu", "pp")
    try:
        via = SocksProxy(host="127.0.0.1", port=proxy.port, username="pu", password="pp")
        comm = connect(settings(server.port, keypair, proxy=via))
        assert run(comm, "echo via-proxy") == (0, ["via-proxy"])
        comm.close()
        assert proxy.targets == [("127.0.0.1", server.port)]
    finally:
        proxy.stop()


def test_ssh_settings_carry_bastion_and_proxy_from_the_config(tmp_path):
    config, problems, _ = prepare(
        QemuBuilder, ssh_proxy_host="socks.example", ssh_proxy_username="u", ssh_password="x"
    )
    assert problems == []
    state = make_state(config)
    state.data["ssh_host"] = "127.0.0.1"
    s = ssh_settings(state)
    assert s.proxy == SocksProxy("socks.example", 1080, "u", None) and s.bastion is None


# --------------------------------------------------------------------------- tunnels


def test_local_and_remote_tunnels(server, keypair, tmp_path):
    echo = socket.create_server(("127.0.0.1", 0))  # a service only "the guest" reaches

    def serve_echo() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = echo.accept()
                with conn:
                    conn.sendall(b"echo:" + conn.recv(100))

    threading.Thread(target=serve_echo, daemon=True).start()
    echo_port = echo.getsockname()[1]
    local_port, remote_port = _free_port(), _free_port()
    config, problems, _ = prepare(
        QemuBuilder,
        ssh_password="s3cret",
        ssh_local_tunnels=[f"{local_port}:127.0.0.1:{echo_port}"],
        ssh_remote_tunnels=[f"{remote_port}:127.0.0.1:{echo_port}"],
    )
    assert problems == []
    state = make_state(config)
    comm = connect(settings(server.port, keypair))
    tunnels = open_tunnels(state, comm)
    try:
        for port in (local_port, remote_port):  # -L on this host, -R on the "guest" side
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                c.sendall(b"hi")
                assert c.recv(100) == b"echo:hi"
    finally:
        assert tunnels is not None
        tunnels.close()
        comm.close()
        echo.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ssh_certificate_file_is_offered_with_the_key(tmp_path):
    """The server here accepts only the certificate's blob: the plain key is not enough."""
    import subprocess

    key = tmp_path / "id_ed25519"
    ca = tmp_path / "ca"
    for path in (key, ca):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                       check=True)  # fmt: skip
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", "builder", "-n", "root",
                    str(key) + ".pub"], check=True)  # fmt: skip
    # elsewhere than <key>-cert.pub, which paramiko (like ssh) would pick up by itself
    cert = tmp_path / "builder-cert.pub"
    (tmp_path / "id_ed25519-cert.pub").rename(cert)
    srv = LoopbackSshServer(authorized_key=cert.read_text().strip())
    try:
        s = SshSettings(host="127.0.0.1", port=srv.port, private_key_file=key, timeout=10,
                        handshake_attempts=1)  # fmt: skip
        with pytest.raises(PackwrapError, match="authentication failed"):
            connect(s)
        s.certificate_file = cert
        comm = connect(s)
        assert run(comm, "echo certified") == (0, ["certified"])
        comm.close()
    finally:
        srv.stop()


def test_ssh_pty_and_read_write_timeout(server, keypair):
    comm = connect(settings(server.port, keypair, pty=True, read_write_timeout=1.0))
    try:
        assert run(comm, "echo tty") == (0, ["tty"]) and server.pty_requests == 1
        with pytest.raises(
            PackwrapError, match=r"did not end within ssh_read_write_timeout \(1s\)"
        ):
            comm.run("sleep 30")
    finally:
        comm.close()


@pytest.mark.parametrize("forward", [True, False])
def test_agent_is_forwarded_unless_disabled(server, keypair, monkeypatch, tmp_path, forward):
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))  # never dialled here
    comm = connect(settings(server.port, keypair, agent_forwarding=forward))
    try:
        assert run(comm, "true") == (0, [])
        assert server.agent_requests == (1 if forward else 0)
    finally:
        comm.close()


def test_temporary_key_pair_name_is_the_public_keys_comment(tmp_path):
    """The SDK's temporary_key_pair_name (Packer: packer_<uuid>; packwrap: packwrap-<build>)."""
    from packwrap.communicator.steps import StepTemporaryKey

    for values, comment in (
        ({}, "packwrap-qemu.t"),
        ({"temporary_key_pair_name": "ci-key"}, "ci-key"),
    ):
        config, problems, _ = QemuBuilder.schema.prepare(
            SourceBody({"kernel": "k", "ssh_username": "root", **values}, file="t", line=1)
        )
        assert problems == []
        state = make_state(config)
        step = StepTemporaryKey()
        step.run(state)
        try:
            assert state.data["ssh_public_key"].split()[2:] == [comment]
        finally:
            step.cleanup(state)
    _, problems, _ = QemuBuilder.schema.prepare(
        SourceBody(
            {"kernel": "k", "ssh_username": "root", "temporary_key_pair_name": "a\nb"},
            file="t",
            line=1,
        )  # fmt: skip
    )
    assert [p.message for p in problems] == ["temporary_key_pair_name 'a\\nb': one line of text"]
