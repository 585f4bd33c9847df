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
class SshSettings:
    host: str
    port: int = 22
    username: str = "root"
    password: str | None = None
    private_key_file: Path | None = None
    agent_auth: bool = False
    timeout: float = 300.0  # ssh_timeout: total time to get a session
    handshake_attempts: int = 10  # ssh_handshake_attempts: failed handshakes/auths
    host_key_fingerprint: str | None = None  # pin, "SHA256:<base64>"
    keepalive_interval: float = 5.0
    file_transfer_method: str = "scp"  # ssh_file_transfer_method: "scp" or "sftp"


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


def fingerprint(key: Any) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class SshCommunicator:
    def __init__(self, client: Any, settings: SshSettings, host_key: str):
        self._client = client
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
                client = cls._open(settings)
                key = client.get_transport().get_remote_server_key()
                seen = fingerprint(key)
                pinned = settings.host_key_fingerprint
                if pinned and pinned.rstrip("=") != seen:
                    client.close()
                    raise PackwrapError(
                        f"SSH host key mismatch for {settings.host}:{settings.port}: "
                        f"expected {pinned}, got {seen}"
                    )
                log(f"SSH host key {key.get_name()} {seen}" + (" (pinned)" if pinned else ""))
                return cls(client, settings, seen)
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
    def _open(settings: SshSettings) -> Any:
        import paramiko

        client = paramiko.SSHClient()
        # Trust-on-first-use, recorded in the log by connect(); pinning checks it after.
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        pkey = None
        if settings.private_key_file:
            try:
                pkey = paramiko.PKey.from_path(str(settings.private_key_file))
            except (OSError, ValueError, paramiko.SSHException) as exc:
                # ValueError: the cryptography backend rejecting a damaged key
                raise PackwrapError(
                    f"cannot read ssh_private_key_file {settings.private_key_file}: {exc}"
                ) from None
        try:
            client.connect(
                settings.host,
                port=settings.port,
                username=settings.username,
                password=settings.password,
                pkey=pkey,
                allow_agent=settings.agent_auth,
                look_for_keys=False,
                timeout=10,
                banner_timeout=10,
                auth_timeout=10,
            )
        except BaseException as exc:
            transport = client.get_transport()
            # Whether an SSH server answered at all (its version line), for connect()'s
            # _no_banner: carried on the exception itself, which may be of any type.
            exc.ssh_banner_seen = bool(transport is not None and transport.remote_version)  # type: ignore[attr-defined]
            client.close()
            raise
        transport = client.get_transport()
        if transport is not None and settings.keepalive_interval > 0:
            transport.set_keepalive(int(settings.keepalive_interval))
        return client

    # -- using the session ------------------------------------------------------------
    def run(
        self,
        command: str,
        *,
        on_output: OutputFn | None = None,
        cancel: threading.Event | None = None,
    ) -> int:
        transport = self._live_transport()

        def start(channel: Any) -> None:
            channel.set_combine_stderr(True)
            channel.exec_command(command)

        channel = _open_channel(transport, start)
        if cancel is not None:
            channel.settimeout(0.2)  # wake up to notice Ctrl-C during a long command
        pending = b""
        try:
            while True:
                try:
                    data = channel.recv(32768)
                except TimeoutError:
                    if cancel is not None and cancel.is_set():
                        with contextlib.suppress(OSError, EOFError):
                            channel.close()
                        raise Cancelled("interrupted while a command ran in the guest") from None
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

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError, socket.error):
            self._client.close()


def _quiet_paramiko() -> None:
    """paramiko's transport thread logs every dropped handshake (each retry while the
    guest boots) with a traceback; without a handler on its logger Python's last-resort
    handler prints them on stderr. connect() reports the last error itself."""
    import logging

    logger = logging.getLogger("paramiko")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
