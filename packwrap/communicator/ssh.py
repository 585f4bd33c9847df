"""SSH communicator on paramiko: connect with Packer's timeout/attempt rules, run, upload.

Host keys: a freshly installed guest has a key nobody knows yet, so by default the
key seen on first connect is recorded in the build log (honest trust-on-first-use);
`ssh_host_key_fingerprint` pins it ("SHA256:..."), e.g. when a site set injects a
known host key.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packwrap.communicator.base import OutputFn
from packwrap.errors import Cancelled, PackwrapError


@dataclass
class Login:
    """Where and as whom to log in: what the target and the bastion (ssh_bastion_*)
    share, read by _connected_client."""

    host: str
    port: int = 22
    username: str = "root"
    password: str | None = None
    private_key_file: Path | None = None
    agent_auth: bool = False
    certificate_file: Path | None = None  # offered with the key (ssh_certificate_file)


@dataclass
class SshSettings(Login):
    timeout: float = 300.0  # ssh_timeout: total time to get a session
    handshake_attempts: int = 10  # ssh_handshake_attempts: failed handshakes/auths
    host_key_fingerprint: str | None = None  # pin, "SHA256:<base64>"
    keepalive_interval: float = 5.0
    file_transfer_method: str = "scp"  # ssh_file_transfer_method: "scp" or "sftp"
    ciphers: tuple[str, ...] = ()  # ssh_ciphers: offer only these (empty: paramiko's)
    kex: tuple[str, ...] = ()  # ssh_key_exchange_algorithms
    bastion: JumpHost | None = None  # ssh_bastion_*: the session runs through this host
    proxy: SocksProxy | None = None  # ssh_proxy_*: the TCP connection goes through SOCKS5
    pty: bool = False  # ssh_pty
    agent_forwarding: bool = True  # not ssh_disable_agent_forwarding
    read_write_timeout: float = 0.0  # ssh_read_write_timeout: a command's limit (0: none)


@dataclass
class JumpHost(Login):
    interactive: bool = False  # keyboard-interactive with the password


@dataclass
class SocksProxy:
    host: str
    port: int = 1080
    username: str | None = None
    password: str | None = None


def disabled_algorithms(settings: SshSettings) -> dict[str, list[str]]:
    """ssh_ciphers / ssh_key_exchange_algorithms as paramiko's `disabled_algorithms`:
    everything paramiko knows but the listed ones; a name it lacks is an error."""
    import paramiko

    out: dict[str, list[str]] = {}
    known_sets = (
        (
            "ciphers",
            "ssh_ciphers",
            settings.ciphers,
            vars(paramiko.Transport)["_preferred_ciphers"],
        ),
        (
            "kex",
            "ssh_key_exchange_algorithms",
            settings.kex,
            vars(paramiko.Transport)["_preferred_kex"],
        ),
    )
    for kind, option, wanted, known in known_sets:
        if not wanted:
            continue
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise PackwrapError(
                f"{option}: {unknown[0]!r} is not supported (supported: {', '.join(known)})"
            )
        out[kind] = [k for k in known if k not in wanted]
    return out


def _load_key(path: Path | None, option: str, certificate: Path | None = None) -> Any:
    """The private key, with its certificate (ssh_certificate_file) when there is one."""
    import paramiko

    if path is None:
        return None
    try:
        key = paramiko.PKey.from_path(str(path))
    except (OSError, ValueError, paramiko.SSHException) as exc:
        # ValueError: the cryptography backend rejecting a damaged key
        raise PackwrapError(f"cannot read {option} {path}: {exc}") from None
    if certificate is not None:
        try:
            key.load_certificate(str(certificate))
        except (OSError, ValueError, paramiko.SSHException) as exc:
            raise PackwrapError(f"cannot use certificate {certificate}: {exc}") from None
    return key


def _connected_client(login: Login, pkey: Any, **connect_args: Any) -> Any:
    """A paramiko client logged in to the target or the bastion. The host key is taken on
    first use (connect() records or checks it). On failure the client is closed and the
    exception says whether an SSH server answered at all (its version line), for
    connect()'s _no_banner: carried on the exception itself, which may be of any type."""
    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(
            login.host,
            port=login.port,
            username=login.username,
            password=login.password,
            pkey=pkey,
            allow_agent=login.agent_auth,
            look_for_keys=False,
            timeout=10,
            **connect_args,
        )
    except BaseException as exc:
        transport = client.get_transport()
        exc.ssh_banner_seen = bool(transport is not None and transport.remote_version)  # type: ignore[attr-defined]
        client.close()
        raise
    return client


def _open_bastion(jump: JumpHost, target: tuple[str, int]) -> tuple[Any, Any]:
    """(bastion client, channel to target): the channel is the session's socket.
    ssh_bastion_interactive: paramiko's password auth falls back to keyboard-interactive
    with the same password when the server asks for that."""
    pkey = _load_key(jump.private_key_file, "ssh_bastion_private_key_file", jump.certificate_file)
    client = _connected_client(jump, pkey)
    try:
        transport = client.get_transport()
        assert transport is not None  # connect() succeeded
        channel = transport.open_channel("direct-tcpip", target, ("127.0.0.1", 0))
    except BaseException:
        client.close()
        raise
    return client, channel


def paramiko_errors() -> type[Exception]:
    import paramiko

    return paramiko.SSHException


def _open_channel(transport: Any, start: Callable[[Any], None]) -> Any:
    """A session channel with its command started; paramiko's errors as PackwrapError."""
    try:
        channel = transport.open_session()
        start(channel)
    except (OSError, EOFError, paramiko_errors()) as exc:
        raise PackwrapError(f"SSH: cannot start a command: {exc or type(exc).__name__}") from None
    return channel


def _no_banner(exc: BaseException) -> bool:
    """True when the connection closed before the server sent its SSH version line."""
    seen = getattr(exc, "ssh_banner_seen", None)
    if seen is not None:
        return not seen
    return "protocol banner" in str(exc)


def _check_waiting(
    channel: Any, cancel: threading.Event | None, deadline: float | None, limit: float
) -> None:
    """While a command runs: Ctrl-C or ssh_read_write_timeout end it."""
    if cancel is not None and cancel.is_set():
        with contextlib.suppress(OSError, EOFError):
            channel.close()
        raise Cancelled("interrupted while a command ran in the guest")
    if deadline is not None and time.monotonic() > deadline:
        with contextlib.suppress(OSError, EOFError):
            channel.close()
        raise PackwrapError(f"the command did not end within ssh_read_write_timeout ({limit:g}s)")


def fingerprint(key: Any) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class SshCommunicator:
    def __init__(self, client: Any, settings: SshSettings, host_key: str, bastion: Any = None):
        self._client = client
        self._bastion = bastion  # ssh_bastion_host's client, closed with the session
        self.settings = settings
        self.host_key_fingerprint = host_key

    # -- connecting ---------------------------------------------------------------
    @classmethod
    def connect(
        cls,
        settings: SshSettings,
        *,
        cancel: threading.Event,
        log: Callable[[str], None] = lambda _m: None,
    ) -> SshCommunicator:
        """Retry until a session is up, the timeout passes or the attempts are spent."""
        import paramiko

        _quiet_paramiko()

        deadline = time.monotonic() + settings.timeout
        attempts = 0
        last_error = "no attempt made"
        while True:
            if cancel.is_set():
                raise Cancelled("interrupted while waiting for SSH")
            if time.monotonic() >= deadline:
                raise PackwrapError(
                    f"timeout waiting for SSH on {settings.host}:{settings.port} "
                    f"after {settings.timeout:.0f}s (last error: {last_error})"
                )
            try:
                client, bastion = cls._open(settings)
                key = client.get_transport().get_remote_server_key()
                seen = fingerprint(key)
                pinned = settings.host_key_fingerprint
                if pinned and pinned.rstrip("=") != seen:
                    client.close()
                    if bastion is not None:
                        bastion.close()
                    raise PackwrapError(
                        f"SSH host key mismatch for {settings.host}:{settings.port}: "
                        f"expected {pinned}, got {seen}"
                    )
                log(f"SSH host key {key.get_name()} {seen}" + (" (pinned)" if pinned else ""))
                return cls(client, settings, seen, bastion)
            except paramiko.AuthenticationException as exc:
                attempts += 1
                last_error = f"authentication failed: {exc}"
            except (paramiko.SSHException, EOFError) as exc:
                last_error = f"handshake failed: {exc or type(exc).__name__}"
                # QEMU's hostfwd (and vmd's NAT) accept the TCP connection before the
                # guest listens, then close it: no SSH server spoke yet, so like a refused
                # connection this is "still booting", not a failed handshake.
                if not _no_banner(exc):
                    attempts += 1
            except OSError as exc:
                # Refused / unreachable while the guest boots: not a handshake attempt.
                last_error = exc.strerror or str(exc)
            if attempts >= settings.handshake_attempts:
                raise PackwrapError(
                    f"SSH to {settings.username}@{settings.host}:{settings.port} failed after "
                    f"{attempts} handshake attempts: {last_error}"
                )
            cancel.wait(1.0)

    @staticmethod
    def _route(settings: SshSettings) -> tuple[Any, Any]:
        """(socket for the session or None, bastion client or None): direct, through the
        bastion's direct-tcpip channel, or through the SOCKS proxy."""
        target = (settings.host, settings.port)
        if settings.bastion is not None:
            return _open_bastion(settings.bastion, target)[::-1]
        if settings.proxy is not None:
            from packwrap.communicator.socks import socks5_connect

            proxy = settings.proxy
            sock = socks5_connect(
                (proxy.host, proxy.port), target, username=proxy.username, password=proxy.password
            )
            return sock, None
        return None, None

    @staticmethod
    def _open(settings: SshSettings) -> tuple[Any, Any]:
        pkey = _load_key(
            settings.private_key_file, "ssh_private_key_file", settings.certificate_file
        )
        disabled = disabled_algorithms(settings)
        sock, bastion = SshCommunicator._route(settings)
        try:
            client = _connected_client(
                settings,
                pkey,
                banner_timeout=10,
                auth_timeout=10,
                sock=sock,
                disabled_algorithms=disabled or None,
            )
        except BaseException:
            if bastion is not None:
                bastion.close()
            raise
        transport = client.get_transport()
        if transport is not None and settings.keepalive_interval > 0:
            transport.set_keepalive(int(settings.keepalive_interval))
        return client, bastion

    # -- using the session ------------------------------------------------------------
    def run(
        self,
        command: str,
        *,
        on_output: OutputFn | None = None,
        cancel: threading.Event | None = None,
    ) -> int:
        transport = self._live_transport()
        pty = self.settings.pty
        # Packer forwards the local agent (when there is one) unless
        # ssh_disable_agent_forwarding is set.
        forward_agent = self.settings.agent_forwarding and bool(os.environ.get("SSH_AUTH_SOCK"))

        def start(channel: Any) -> None:
            if forward_agent:
                from paramiko.agent import AgentRequestHandler

                AgentRequestHandler(channel)
            if pty:  # ssh_pty: the command runs on a terminal, as `ssh -t`
                channel.get_pty()
            channel.set_combine_stderr(True)
            channel.exec_command(command)

        channel = _open_channel(transport, start)
        limit = self.settings.read_write_timeout
        deadline = time.monotonic() + limit if limit > 0 else None
        if cancel is not None or deadline is not None:
            channel.settimeout(0.2)  # wake up to notice Ctrl-C or the deadline
        pending = b""
        try:
            while True:
                try:
                    data = channel.recv(32768)
                except TimeoutError:
                    _check_waiting(channel, cancel, deadline, limit)
                    continue
                if not data:
                    break
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if on_output:
                        on_output(line.decode(errors="replace").rstrip("\r"))
        except (OSError, EOFError):
            return -1
        if pending and on_output:
            on_output(pending.decode(errors="replace").rstrip("\r"))
        if not channel.exit_status_ready() and channel.closed and not transport.is_active():
            return -1
        return channel.recv_exit_status()

    def upload(self, local: Path, remote: str) -> None:
        if self.settings.file_transfer_method == "sftp":
            from packwrap.communicator.sftp import sftp_upload as send
        else:
            from packwrap.communicator.scp import scp_upload as send

        if not local.exists():
            raise PackwrapError(f"file provisioner: source {local} does not exist")
        transport = self._live_transport()
        try:
            send(transport, local, remote)
        except (OSError, EOFError, paramiko_errors()) as exc:
            raise PackwrapError(f"upload to {remote} failed: {exc or type(exc).__name__}") from None

    def _live_transport(self) -> Any:
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise PackwrapError("SSH connection is closed")
        return transport

    def transport(self) -> Any:
        """The live paramiko transport (for tunnels)."""
        return self._live_transport()

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError, socket.error):
            self._client.close()
        if self._bastion is not None:
            with contextlib.suppress(OSError, EOFError, socket.error):
                self._bastion.close()


def _quiet_paramiko() -> None:
    """paramiko's transport thread logs every dropped handshake (each retry while the
    guest boots) with a traceback; without a handler on its logger Python's last-resort
    handler prints them on stderr. connect() reports the last error itself."""
    import logging

    logger = logging.getLogger("paramiko")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
