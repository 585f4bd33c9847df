"""Steps around the communicator: temporary key, connect, remove the temporary key.

Builders put these after their "boot the installed disk" step; each reads the
guest address from state.data ("ssh_host", "ssh_port") set by that step, so the
same steps serve QEMU (forwarded loopback port) and vmm (100.64.<id>.3:22).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.build.state import State, config_of
from packwrap.build.step import Step
from packwrap.communicator.keys import make_temporary_key_pair
from packwrap.communicator.ssh import JumpHost, SocksProxy, SshCommunicator, SshSettings
from packwrap.errors import PackwrapError

if TYPE_CHECKING:
    from packwrap.build.common_options import CommonConfig
    from packwrap.communicator.tunnels import Tunnels


def uses_ssh(state: State) -> bool:
    return (config_of(state).communicator or "ssh") == "ssh"


def needs_temporary_key(state: State) -> bool:
    cfg = config_of(state)
    return uses_ssh(state) and not (
        cfg.ssh_password or cfg.ssh_private_key_file or cfg.ssh_agent_auth
    )


def temporary_key_comment(state: State) -> str:
    """The public key's comment: temporary_key_pair_name (the SDK's meaning), else
    packwrap-<build> (Packer's default is packer_<uuid>)."""
    return config_of(state).temporary_key_pair_name or f"packwrap-{state.build_name}"


class StepTemporaryKey(Step):
    """Make a key pair when the template names no credentials (Packer's StepSSHKeyGen).

    The public half reaches the guest through install.conf (`{{ .SSHPublicKey }}` in
    the docroot's *.pkr.in files), so this step runs before the HTTP server.
    """

    name = "temporary ssh key"

    def run(self, state: State) -> None:
        if not needs_temporary_key(state):
            return
        directory = Path(tempfile.mkdtemp(prefix="packwrap-key-"))
        state.data["temporary_key_dir"] = directory
        cfg = config_of(state)
        pair = make_temporary_key_pair(
            directory,
            comment=temporary_key_comment(state),
            kind=cfg.temporary_key_pair_type,
            bits=cfg.temporary_key_pair_bits,
        )
        state.data["ssh_private_key_file"] = pair.private_key_file
        state.data["ssh_public_key"] = pair.public_key
        state.ui.say("Created a temporary SSH key pair for this build")

    def cleanup(self, state: State) -> None:
        directory = state.data.pop("temporary_key_dir", None)
        if directory:
            shutil.rmtree(directory, ignore_errors=True)


def ssh_settings(state: State) -> SshSettings:
    cfg = config_of(state)
    host = cfg.ssh_host or state.data.get("ssh_host")
    if not host:
        raise PackwrapError("no SSH host: the builder did not report a guest address")
    timeout, attempts = cfg.ssh_timeout, cfg.ssh_handshake_attempts
    if not timeout and not attempts:  # Packer: neither set -> 5m and 10
        timeout, attempts = 300.0, 10
    key_file = cfg.ssh_private_key_file or state.data.get("ssh_private_key_file")
    return SshSettings(
        host=host,
        port=int(state.data.get("ssh_port") or cfg.ssh_port or 22),
        username=cfg.ssh_username or "root",
        password=cfg.ssh_password or None,
        private_key_file=Path(key_file) if key_file else None,
        agent_auth=cfg.ssh_agent_auth,
        timeout=float(timeout or 300.0),
        handshake_attempts=int(attempts or 10),
        host_key_fingerprint=(
            # the template's pin, else the key a site set shipped (StepSiteSet)
            cfg.ssh_host_key_fingerprint or state.data.get("ssh_host_key_fingerprint")
        )
        or None,
        keepalive_interval=cfg.ssh_keep_alive_interval or 5.0,
        file_transfer_method=cfg.ssh_file_transfer_method or "scp",
        ciphers=tuple(cfg.ssh_ciphers or ()),
        kex=tuple(cfg.ssh_key_exchange_algorithms or ()),
        bastion=_bastion(cfg),
        proxy=_proxy(cfg),
        certificate_file=_path(cfg.ssh_certificate_file),
        pty=bool(cfg.ssh_pty),
        agent_forwarding=not cfg.ssh_disable_agent_forwarding,
        read_write_timeout=float(cfg.ssh_read_write_timeout or 0.0),
    )


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def _bastion(cfg: CommonConfig) -> JumpHost | None:
    if not cfg.ssh_bastion_host:
        return None
    return JumpHost(
        host=cfg.ssh_bastion_host,
        port=cfg.ssh_bastion_port or 22,
        username=cfg.ssh_bastion_username or "root",
        password=cfg.ssh_bastion_password or None,
        private_key_file=_path(cfg.ssh_bastion_private_key_file),
        agent_auth=cfg.ssh_bastion_agent_auth,
        interactive=cfg.ssh_bastion_interactive,
        certificate_file=_path(cfg.ssh_bastion_certificate_file),
    )


def _proxy(cfg: CommonConfig) -> SocksProxy | None:
    if not cfg.ssh_proxy_host:
        return None
    return SocksProxy(
        host=cfg.ssh_proxy_host,
        port=cfg.ssh_proxy_port or 1080,
        username=cfg.ssh_proxy_username or None,
        password=cfg.ssh_proxy_password or None,
    )


def open_tunnels(state: State, comm: SshCommunicator) -> Tunnels | None:
    """ssh_local_tunnels / ssh_remote_tunnels over the session (Packer's -L / -R)."""
    from packwrap.build.common_options import parse_tunnel
    from packwrap.communicator.tunnels import Tunnels

    local = config_of(state).ssh_local_tunnels or []
    remote = config_of(state).ssh_remote_tunnels or []
    if not (local or remote):
        return None
    tunnels = Tunnels(comm.transport())
    try:
        for spec in local:
            tunnels.local(*parse_tunnel(spec))
            state.ui.message(f"SSH local tunnel {spec}")
        for spec in remote:
            tunnels.remote(*parse_tunnel(spec))
            state.ui.message(f"SSH remote tunnel {spec}")
    except (OSError, EOFError, ValueError) as exc:
        tunnels.close()
        raise PackwrapError(f"SSH tunnel: {exc}") from None
    except Exception as exc:  # paramiko's SSHException: the guest refused the forward
        tunnels.close()
        raise PackwrapError(f"SSH tunnel refused: {exc}") from None
    return tunnels


class StepConnect(Step):
    name = "connect"
    tunnels: Tunnels | None = None

    def run(self, state: State) -> None:
        if not uses_ssh(state):
            state.ui.say("Communicator none: skipping connect and provisioning")
            return
        settings = ssh_settings(state)
        state.ui.say(f"Waiting for SSH on {settings.host}:{settings.port}...")
        log = state.ui.message
        comm = SshCommunicator.connect(settings, cancel=state.cancel_event, log=log)
        pause = config_of(state).pause_before_connecting or 0.0
        if pause > 0:
            # Packer: connect once (proves the guest is up), wait, then reconnect.
            comm.close()
            state.ui.say(f"Pausing {pause:.0f}s before connecting")
            state.sleep(pause)
            comm = SshCommunicator.connect(settings, cancel=state.cancel_event, log=log)
        state.data["communicator"] = comm
        state.ui.say("Connected to SSH!")
        self.tunnels = open_tunnels(state, comm)

    def cleanup(self, state: State) -> None:
        if self.tunnels is not None:
            self.tunnels.close()
            self.tunnels = None
        comm = state.data.pop("communicator", None)
        if comm is not None:
            comm.close()


class StepCleanupTemporaryKey(Step):
    """Remove the temporary key from root's authorized_keys (unless asked to keep it)."""

    name = "remove temporary ssh key"

    def run(self, state: State) -> None:
        public = state.data.get("ssh_public_key")
        comm = state.data.get("communicator")
        if not public or comm is None:
            return
        if not config_of(state).ssh_clear_authorized_keys:
            state.ui.say("Keeping the temporary SSH key in the image (ssh_clear_authorized_keys)")
            return
        from packwrap.provision.generalize import remove_authorized_key_command

        state.ui.say("Removing the temporary SSH key from the image")
        status = comm.run(remove_authorized_key_command(public.split()[1]))
        if status != 0:
            raise PackwrapError(f"could not remove the temporary SSH key (status {status})")
