"""SSH communicator and provisioners against a real SSH server on 127.0.0.1."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from packwrap.build.state import State
from packwrap.communicator.keys import make_temporary_key_pair
from packwrap.communicator.ssh import SshCommunicator, SshSettings
from packwrap.config import Config
from packwrap.config.schema import SourceBody
from packwrap.errors import PackwrapError
from packwrap.provision.base import ProvisionContext
from packwrap.provision.file import FileProvisioner
from packwrap.provision.shell import ShellProvisioner
from packwrap.provision.shutdown import StepShutdown
from tests.ssh_server_support import SFTP_SERVER, LoopbackSshServer
from tests.state_support import make_state


@pytest.fixture
def keypair(tmp_path: Path):
    return make_temporary_key_pair(tmp_path / "key")


@pytest.fixture
def server(keypair):
    srv = LoopbackSshServer(authorized_key=keypair.public_key, password="s3cret")
    try:
        yield srv
    finally:
        srv.stop()


def connect(server, keypair, **overrides) -> SshCommunicator:
    settings = SshSettings(
        host="127.0.0.1",
        port=server.port,
        private_key_file=keypair.private_key_file,
        timeout=20,
        handshake_attempts=3,
    )
    for key, value in overrides.items():
        setattr(settings, key, value)
    return SshCommunicator.connect(settings, cancel=threading.Event())


def context(comm, tmp_path: Path, lines: list[str]) -> ProvisionContext:
    return ProvisionContext(
        communicator=comm,
        template_dir=tmp_path,
        say=lines.append,
        output=lines.append,
        cancel=threading.Event(),
        interactive=False,
    )


def prepared(cls, values: dict) -> Config:
    config, problems, _ = cls.schema.prepare(SourceBody(values, file="t.pkr.hcl", line=1))
    assert not problems, problems
    return config


def test_temporary_key_is_private_and_authorizes(server, keypair, tmp_path):
    assert keypair.private_key_file.stat().st_mode & 0o777 == 0o600
    assert keypair.public_key.startswith("ssh-ed25519 ")
    comm = connect(server, keypair)
    try:
        out: list[str] = []
        assert comm.run("echo hello; echo oops >&2; exit 3", on_output=out.append) == 3
        assert out == ["hello", "oops"]
        assert comm.host_key_fingerprint.startswith("SHA256:")
    finally:
        comm.close()


def test_password_auth(server, keypair):
    comm = connect(server, keypair, private_key_file=None, password="s3cret")
    try:
        assert comm.run("true") == 0
    finally:
        comm.close()


def test_wrong_credentials_fail_after_configured_attempts(server, keypair):
    with pytest.raises(PackwrapError, match=r"failed after 3 handshake attempts: authentication"):
        connect(server, keypair, private_key_file=None, password="wrong")
    assert server.auth_attempts >= 3


def test_pinned_host_key_mismatch_is_refused(server, keypair):
    with pytest.raises(PackwrapError, match="host key mismatch"):
        connect(
            server,
            keypair,
            host_key_fingerprint="SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )


def test_connection_refused_times_out_with_clear_message(keypair):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = SshSettings(host="127.0.0.1", port=port, timeout=2, handshake_attempts=3)
    with pytest.raises(PackwrapError, match=r"timeout waiting for SSH on 127.0.0.1:\d+ after 2s"):
        SshCommunicator.connect(settings, cancel=threading.Event())


def test_shell_inline_env_and_failure(server, keypair, tmp_path):
    comm = connect(server, keypair)
    lines: list[str] = []
    try:
        marker = tmp_path / "marker"
        ok = prepared(
            ShellProvisioner,
            {
                "inline": [f'echo "$GREETING" > {marker}', "echo done"],
                "environment_vars": ["GREETING=hi there"],
                "remote_folder": str(tmp_path),
            },
        )
        ShellProvisioner(ok).provision(context(comm, tmp_path, lines))
        assert marker.read_text() == "hi there\n"
        assert "done" in lines
        assert not list(tmp_path.glob("script_*.sh")), "uploaded script must be removed"

        failing = prepared(
            ShellProvisioner,
            {"inline": ["echo before", "exit 7", "echo never"], "remote_folder": str(tmp_path)},
        )
        with pytest.raises(PackwrapError, match=r"exited with status 7; last output: before"):
            ShellProvisioner(failing).provision(context(comm, tmp_path, lines))
        assert "never" not in lines
    finally:
        comm.close()


def test_shell_script_file(server, keypair, tmp_path):
    (tmp_path / "setup.sh").write_text('#!/bin/sh\necho from-script "$1"\n')
    comm = connect(server, keypair)
    lines: list[str] = []
    try:
        cfg = prepared(ShellProvisioner, {"script": "setup.sh", "remote_folder": str(tmp_path)})
        ShellProvisioner(cfg).provision(context(comm, tmp_path, lines))
        assert "from-script " in lines
    finally:
        comm.close()


def test_shell_config_errors():
    _, problems, _ = ShellProvisioner.schema.prepare(
        SourceBody({"inline": ["x"], "script": "y", "environment_vars": ["1BAD"]}, "t", 3)
    )
    messages = [p.message for p in problems]
    assert any("exactly one of inline, script, scripts" in m for m in messages)
    assert any("'1BAD' is not NAME=value" in m for m in messages)


def test_file_upload_file_and_directory(server, keypair, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "motd").write_text("welcome\n")
    (src / "sub" / "deep.txt").write_text("deep\n")
    dest = tmp_path / "dest"
    dest.mkdir()
    comm = connect(server, keypair)
    try:
        ctx = context(comm, tmp_path, [])
        one = prepared(FileProvisioner, {"source": "src/motd", "destination": str(dest / "motd")})
        FileProvisioner(one).provision(ctx)
        assert (dest / "motd").read_text() == "welcome\n"

        tree = prepared(FileProvisioner, {"source": "src/", "destination": str(dest / "tree")})
        FileProvisioner(tree).provision(ctx)
        assert (dest / "tree" / "sub" / "deep.txt").read_text() == "deep\n"
        assert (dest / "tree" / "motd").read_text() == "welcome\n"

        missing = prepared(FileProvisioner, {"source": "nope", "destination": str(dest / "x")})
        with pytest.raises(PackwrapError, match="source nope does not exist"):
            FileProvisioner(missing).provision(ctx)
    finally:
        comm.close()


def _tree(root: Path) -> dict[str, tuple[str, int]]:
    """Relative path -> (content or "<dir>", mode) for every entry under root."""
    out = {}
    for p in sorted(root.rglob("*")):
        content = "<dir>" if p.is_dir() else p.read_text()
        out[p.relative_to(root).as_posix()] = (content, p.stat().st_mode & 0o777)
    return out


@pytest.mark.skipif(SFTP_SERVER is None, reason="openssh-sftp-server not installed")
def test_sftp_upload_lands_where_scp_puts_it(server, keypair, tmp_path):
    """ssh_file_transfer_method = "sftp": the real sftp-server, and the same targets, names
    and modes as scp for a file or a directory sent to an existing directory or a new name."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "motd").write_text("welcome\n")
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o750)
    (src / "sub" / "deep.txt").write_text("deep\n")
    (src / "sub" / "link").symlink_to("/etc/passwd")  # never followed out of the tree
    results = {}
    for method in ("scp", "sftp"):
        dest = tmp_path / method
        (dest / "existing").mkdir(parents=True)
        comm = connect(server, keypair, file_transfer_method=method)
        try:
            comm.upload(src / "motd", str(dest / "existing"))  # into the directory
            comm.upload(src / "run.sh", str(dest / "renamed.sh"))  # a new name
            comm.upload(src, str(dest / "existing"))  # a directory into a directory
            comm.upload(src / "sub", str(dest / "newdir"))  # a directory under a new name
        finally:
            comm.close()
        results[method] = _tree(dest)
    assert results["sftp"] == results["scp"]
    tree = results["sftp"]
    assert tree["existing/motd"][0] == "welcome\n"
    assert tree["renamed.sh"] == ("#!/bin/sh\n", 0o750)
    assert tree["existing/src/sub/deep.txt"][0] == "deep\n"
    assert tree["newdir/deep.txt"][0] == "deep\n"
    assert "existing/src/sub/link" not in tree and "newdir/link" not in tree
    # scp ran `scp -t`/`scp -tr`; sftp ran only the sftp-server subsystem, once per upload.
    assert [c.split()[0] for c in server.commands] == ["scp"] * 4 + [SFTP_SERVER] * 4


@pytest.mark.skipif(SFTP_SERVER is None, reason="openssh-sftp-server not installed")
def test_sftp_upload_errors_are_one_line(server, keypair, tmp_path):
    (tmp_path / "f").write_text("x")
    comm = connect(server, keypair, file_transfer_method="sftp")
    try:
        with pytest.raises(PackwrapError, match=r"upload to .*/no/such/dir/f failed: "):
            comm.upload(tmp_path / "f", str(tmp_path / "no" / "such" / "dir" / "f"))
    finally:
        comm.close()


def test_sftp_without_the_subsystem_says_so(keypair, tmp_path, monkeypatch):
    import tests.ssh_server_support as support

    monkeypatch.setattr(support, "SFTP_SERVER", None)  # a guest sshd without sftp-server
    srv = LoopbackSshServer(authorized_key=keypair.public_key)
    (tmp_path / "f").write_text("x")
    try:
        comm = connect(srv, keypair, file_transfer_method="sftp")
        try:
            with pytest.raises(PackwrapError, match='no SFTP subsystem.*"scp"'):
                comm.upload(tmp_path / "f", str(tmp_path / "g"))
        finally:
            comm.close()
    finally:
        srv.stop()


def _state(config: dict) -> State:
    return make_state(config)


def test_shutdown_times_out_then_forces():
    forced: list[bool] = []
    state = _state({"shutdown_timeout": 0.2, "shutdown_command": None})
    step = StepShutdown(
        wait_stopped=lambda st, t: False,
        force_stop=lambda st: forced.append(True),
        request_stop=lambda st: None,
    )
    with pytest.raises(PackwrapError, match="timeout while waiting for the machine to shut down"):
        step.run(state)
    assert forced == [True]
    assert any("stopping it by force" in m for m in state.ui.errors)


def test_shutdown_clean_stop():
    state = _state({"shutdown_timeout": 5})
    step = StepShutdown(
        wait_stopped=lambda st, t: True, force_stop=lambda st: None, request_stop=lambda st: None
    )
    step.run(state)


def test_a_guest_still_booting_leaves_no_paramiko_traceback_on_stderr(tmp_path):
    """QEMU's hostfwd accepts and then drops the connection while the guest boots:
    the retries are quiet. paramiko's transport thread logs each one with a traceback,
    which Python's last-resort handler prints unless paramiko's logger has a handler.
    Run in a child process: pytest's own log capture would hide the difference."""
    import socket
    import subprocess
    import sys

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]

    def accept_and_drop() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=accept_and_drop, daemon=True).start()
    script = (
        "import threading\n"
        "from packwrap.communicator.ssh import SshCommunicator, SshSettings\n"
        "from packwrap.errors import PackwrapError\n"
        f"s = SshSettings(host='127.0.0.1', port={port}, timeout=2.5, handshake_attempts=3)\n"
        "try:\n"
        "    SshCommunicator.connect(s, cancel=threading.Event())\n"
        "except PackwrapError as exc:\n"
        "    print(exc)\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
    finally:
        listener.close()
    assert "timeout waiting for SSH" in done.stdout, done
    assert "Traceback" not in done.stderr and "Exception" not in done.stderr, done.stderr
