"""How the openbsd blueprint lets provisioning log in as root (communicator = "ssh")."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from packwrap.blueprint.render import TEMPORARY_KEY, installer_values
from packwrap.cli import main
from packwrap.errors import PackwrapError


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PACKWRAP_BLUEPRINT_PATH", raising=False)


def keypair(tmp_path: Path, name: str = "id_ed25519") -> Path:
    key = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me@host",
                    "-f", str(key)], check=True)  # fmt: skip
    return key


def test_without_credentials_the_build_key_is_installed_for_root():
    out = installer_values({"communicator": "ssh", "ssh_username": "root", "root_ssh_login": "no"})
    assert out["root_ssh_key"] == TEMPORARY_KEY == "{{ .SSHPublicKey }}"
    assert out["root_ssh_login"] == "prohibit-password"


def test_communicator_none_or_another_user_changes_nothing():
    values = {"communicator": "none", "ssh_username": "root", "root_ssh_login": "no"}
    assert installer_values(values) == values
    other = {"communicator": "ssh", "ssh_username": "puffy", "root_ssh_login": "no"}
    assert installer_values(other) == other


def test_a_private_key_file_installs_its_public_half(tmp_path):
    key = keypair(tmp_path)
    out = installer_values({"communicator": "ssh", "ssh_private_key_file": str(key)})
    assert out["root_ssh_key"] == key.with_suffix(".pub").read_text().strip()
    relative = installer_values(
        {"communicator": "ssh", "ssh_private_key_file": key.name}, base_dir=tmp_path
    )
    assert relative["root_ssh_key"] == out["root_ssh_key"]
    (tmp_path / "lonely").write_text("x")
    with pytest.raises(PackwrapError, match=r"lonely\.pub is needed"):
        installer_values({"communicator": "ssh", "ssh_private_key_file": str(tmp_path / "lonely")})


def test_a_root_key_needs_the_matching_private_key(tmp_path):
    key = keypair(tmp_path)
    values = {"communicator": "ssh", "ssh_public_key_file": f"{key}.pub"}
    with pytest.raises(PackwrapError, match="set ssh_private_key_file to the matching"):
        installer_values(values)
    out = installer_values({**values, "ssh_private_key_file": str(key)})
    assert out["root_ssh_key"] == key.with_suffix(".pub").read_text().strip()


def test_new_fills_in_the_private_key_next_to_the_public_one(tmp_path, monkeypatch):
    key = keypair(tmp_path)
    monkeypatch.chdir(tmp_path)
    rc = main(["new", "openbsd-76", "p", "--builder", "qemu", "--no-root-password",
               "--var", "communicator=ssh", "--var", f"ssh_public_key_file={key}.pub"])  # fmt: skip
    assert rc == 0
    pkrvars = (tmp_path / "p" / "openbsd-76.auto.pkrvars.hcl").read_text()
    assert f'"{key}"' in pkrvars and "ssh_private_key_file" in pkrvars
    conf = (tmp_path / "p" / "http" / "install.conf.pkr.in").read_text()
    assert key.with_suffix(".pub").read_text().split()[1] in conf
    assert "SSHPublicKey" not in conf and "Allow root ssh login = prohibit-password" in conf


def test_new_with_communicator_ssh_answers_the_build_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["new", "openbsd-76", "p", "--builder", "openbsd-vmm", "--no-root-password",
                 "--var", "communicator=ssh"]) == 0  # fmt: skip
    conf = (tmp_path / "p" / "http" / "install.conf.pkr.in").read_text()
    assert "Public ssh key for root account = {{ .SSHPublicKey }}\n" in conf
    assert main(["lint", str(tmp_path / "p" / "http" / "install.conf.pkr.in")]) == 0
