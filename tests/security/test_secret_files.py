"""Files that hold secrets are 0600 (even under umask 0), and no error message carries one.

Modes are checked under umask 000, the worst case: a mode that relies on the umask shows.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from packwrap.autoinstall.passwords import hash_password
from packwrap.autoinstall.render import render_install_conf
from packwrap.build.http_server import render_generated_files
from packwrap.build.steps.http_server import StepHTTPServer
from packwrap.cli import main
from packwrap.communicator.keys import make_temporary_key_pair
from packwrap.communicator.ssh import SshCommunicator, SshSettings
from packwrap.communicator.steps import StepTemporaryKey
from packwrap.config import Config
from packwrap.errors import PackwrapError
from packwrap.template.pkrvars import update_pkrvars
from tests.ssh_server_support import LoopbackSshServer
from tests.state_support import make_state

PASSWORD = "Sekr1t-root-pw"


@pytest.fixture
def umask0() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


# --- modes -------------------------------------------------------------------------------


def test_temporary_ssh_key_is_private(tmp_path: Path, umask0: None) -> None:
    pair = make_temporary_key_pair(tmp_path / "k")
    assert mode(pair.private_key_file) == 0o600
    assert b"PRIVATE KEY" in pair.private_key_file.read_bytes()
    # through the step: a private directory too, gone after cleanup
    state = make_state({"communicator": "ssh", "ssh_username": "root"})
    step = StepTemporaryKey()
    step.run(state)
    key = Path(state.data["ssh_private_key_file"])
    assert mode(key) == 0o600 and mode(key.parent) == 0o700
    assert not any("PRIVATE" in line for line in state.ui.lines)
    step.cleanup(state)
    assert not key.parent.exists()


def test_generated_docroot_files_are_private(tmp_path: Path, umask0: None) -> None:
    docroot = tmp_path / "http"
    (docroot / "sub").mkdir(parents=True)
    (docroot / "install.conf.pkr.in").write_text("Password for root account = {{ .Name }}\n")
    (docroot / "sub" / "x.pkr.in").write_text("secret\n")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    made = render_generated_files(docroot, overlay, {"Name": "h"}, lambda t, d, w: t)
    assert sorted(m for m, _ in made) == ["install.conf", "sub/x"]
    assert mode(overlay / "install.conf") == 0o600 and mode(overlay / "sub" / "x") == 0o600
    # the build step's own overlay directory is private as well
    config = Config(
        {"http_directory": str(docroot), "http_content": None, "http_port_min": 0,
         "http_port_max": 0, "http_bind_address": None}
    )  # fmt: skip
    state = make_state(config, template_dir=tmp_path)
    step = StepHTTPServer()
    step.run(state)
    try:
        ov = Path(state.data["http_overlay_dir"])
        assert mode(ov) == 0o700
        assert mode(ov / "install.conf") == 0o600
    finally:
        step.cleanup(state)


def test_new_project_keeps_the_password_hash_private(
    tmp_path: Path, umask0: None, monkeypatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PACKWRAP_BLUEPRINT_PATH", raising=False)
    monkeypatch.delenv("PACKWRAP_ROOT_PASSWORD", raising=False)
    target = tmp_path / "proj"
    assert main(["new", "openbsd-76", str(target), "--root-password", PASSWORD]) == 0
    pkrvars = target / "openbsd-76.auto.pkrvars.hcl"
    the_hash = re.search(r"\$2b\$\d\d\$[./A-Za-z0-9]{53}", pkrvars.read_text()).group(0)
    holders = []
    for p in sorted(target.rglob("*")):
        if not p.is_file():
            continue
        data = p.read_text(errors="replace")
        assert PASSWORD not in data, f"plaintext password in {p}"
        if the_hash in data:
            holders.append(p)
            assert mode(p) == 0o600, f"{p.relative_to(target)} holds the hash with mode {mode(p):o}"
    names = {p.name for p in holders}
    assert any(n.endswith(".auto.pkrvars.hcl") for n in names), names
    assert any(n.startswith("install.conf") for n in names), names


def test_update_pkrvars_keeps_a_private_file_private(tmp_path: Path, umask0: None) -> None:
    p = tmp_path / "v.auto.pkrvars.hcl"
    p.write_text('root_password_hash = "$2b$10$x"\n')
    p.chmod(0o600)
    update_pkrvars(p, {"iso_checksum": "sha256:00"})
    assert mode(p) == 0o600
    assert not [q for q in tmp_path.iterdir() if q != p]  # no temporary file left behind


# --- install.conf: bcrypt only, refusals without the value ---------------------------------


@pytest.mark.parametrize(
    "value",
    [PASSWORD, f"$2b$10${PASSWORD}", "$2b$04$" + "a" * 53, f"{PASSWORD}\n", "", "*"],
)
def test_install_conf_refuses_plaintext_without_echoing_it(value: str) -> None:
    with pytest.raises(PackwrapError) as info:
        render_install_conf({"hostname": "h", "root_password_hash": value}, "7.6")
    assert PASSWORD not in str(info.value)


def test_install_conf_holds_the_bcrypt_hash_only() -> None:
    h = hash_password(PASSWORD)
    text = render_install_conf({"hostname": "h", "root_password_hash": h}, "7.6")
    assert h in text and PASSWORD not in text


# --- SSH communicator: no password or key material in its errors ------------------------


@pytest.fixture
def ssh_server() -> Iterator[LoopbackSshServer]:
    server = LoopbackSshServer(password="the-right-one")
    try:
        yield server
    finally:
        server.stop()


def _connect_error(settings: SshSettings) -> str:
    with pytest.raises(PackwrapError) as info:
        SshCommunicator.connect(settings, cancel=threading.Event())
    return str(info.value)


def test_ssh_wrong_password_error_has_no_password(ssh_server: LoopbackSshServer) -> None:
    msg = _connect_error(
        SshSettings(
            "127.0.0.1",
            ssh_server.port,
            "root",
            password=PASSWORD,
            timeout=20,
            handshake_attempts=1,
        )  # fmt: skip
    )
    assert "authentication failed" in msg
    assert PASSWORD not in msg and "the-right-one" not in msg


def test_ssh_bad_key_file_error_has_no_key_material(tmp_path: Path, umask0: None) -> None:
    good = make_temporary_key_pair(tmp_path / "k").private_key_file
    body = good.read_text().splitlines()
    broken = tmp_path / "broken"
    # a real key's armour with a damaged body: the parser's complaint must not quote it
    broken.write_text("\n".join([body[0], body[1][:-8] + "!!!!!!!!", *body[2:]]) + "\n")
    msg = _connect_error(SshSettings("127.0.0.1", 9, "root", private_key_file=broken, timeout=5))
    assert "ssh_private_key_file" in msg
    for line in body[1:-1]:
        assert line[:16] not in msg


def test_ssh_password_is_not_in_timeout_errors() -> None:
    # nothing listens on this port: the error is a timeout naming the last error
    msg = _connect_error(
        SshSettings("127.0.0.1", 9, "root", password=PASSWORD, timeout=1.5, handshake_attempts=2)
    )
    assert "timeout" in msg and PASSWORD not in msg
