"""ssh_host_key_pin: a per-build host key pair in the site set, its fingerprint pinned."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from packwrap.autoinstall.hostkey import make_host_key, public_fingerprint
from packwrap.autoinstall.siteset import SITE_SUBDIR
from packwrap.build.state import State
from packwrap.build.steps.site_set import StepSiteSet
from packwrap.communicator.steps import ssh_settings
from packwrap.config import Config
from packwrap.errors import PackwrapError
from tests.state_support import common_config, make_state

KEY = "./etc/ssh/ssh_host_ed25519_key"


def _project(tmp_path: Path, values: dict, site_files: dict[str, str] | None = None) -> Path:
    project = tmp_path / "proj"
    (project / ".packwrap").mkdir(parents=True)
    record = {"release": "7.6", "values": values}
    (project / ".packwrap" / "project.json").write_text(json.dumps(record))
    for name, text in (site_files or {}).items():
        path = project / "site" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return project


def _run(project: Path, tmp_path: Path, config: Config | None = None) -> State:
    state = make_state(config, template_dir=project)
    overlay = tmp_path / "overlay"
    overlay.mkdir(exist_ok=True)
    state.data["http_overlay_dir"] = str(overlay)
    StepSiteSet().run(state)
    return state


def _members(tmp_path: Path) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(tmp_path / "overlay" / SITE_SUBDIR / "site76.tgz", "r:gz") as tar:
        return {
            m.name: (m, tar.extractfile(m).read() if m.isfile() else None)  # type: ignore[union-attr]
            for m in tar.getmembers()
        }


PIN = {"site_set": True, "ssh_host_key_pin": True, "hostname": "web"}


def test_pinned_host_key_in_the_site_set_with_mode_0600(tmp_path: Path):
    project = _project(tmp_path, PIN, {"etc/motd": "hi\n"})
    state = _run(project, tmp_path)
    members = _members(tmp_path)
    private, private_data = members[KEY]
    public, public_data = members[KEY + ".pub"]
    assert private.mode == 0o600 and private.uid == 0 and private.gid == 0
    assert public.mode == 0o644
    assert private_data and private_data.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert public_data and public_data.decode().startswith("ssh-ed25519 ")
    assert public_data.decode().rstrip().endswith(" root@web")
    assert "./etc/motd" in members  # the project's own files are still there
    fp = public_fingerprint(public_data.decode())
    assert state.data["ssh_host_key_fingerprint"] == fp
    said = "\n".join(state.ui.lines)
    assert fp in said and "PRIVATE" not in said
    # the communicator pins it when the template has no pin of its own
    state.data["ssh_host"] = "127.0.0.1"
    assert ssh_settings(state).host_key_fingerprint == fp
    state.config = common_config({"ssh_host_key_fingerprint": "SHA256:own"})
    assert ssh_settings(state).host_key_fingerprint == "SHA256:own"


def test_the_private_and_public_halves_match(tmp_path: Path):
    _run(_project(tmp_path, PIN), tmp_path)  # no site/ dir: a set with the key alone
    members = _members(tmp_path)
    assert sorted(members) == ["./etc/installurl", KEY, KEY + ".pub"]
    key_file = tmp_path / "k"
    key_file.write_bytes(members[KEY][1] or b"")
    key_file.chmod(0o600)
    try:
        derived = subprocess.run(
            ["ssh-keygen", "-y", "-f", str(key_file)], capture_output=True, check=True, text=True
        ).stdout.split()[:2]
    except FileNotFoundError:
        pytest.skip("ssh-keygen not installed")
    assert derived == (members[KEY + ".pub"][1] or b"").decode().split()[:2]


def test_a_new_key_per_build(tmp_path: Path):
    project = _project(tmp_path, PIN)
    first = _run(project, tmp_path).data["ssh_host_key_fingerprint"]
    second = _run(project, tmp_path).data["ssh_host_key_fingerprint"]
    assert first != second


def test_no_key_unless_asked(tmp_path: Path):
    state = _run(_project(tmp_path, {"site_set": True}, {"etc/motd": "hi\n"}), tmp_path)
    assert KEY not in _members(tmp_path)
    assert "ssh_host_key_fingerprint" not in state.data


def test_pin_without_site_set_is_refused(tmp_path: Path):
    project = _project(tmp_path, {"site_set": False, "ssh_host_key_pin": True})
    with pytest.raises(PackwrapError, match="ssh_host_key_pin needs site_set = true"):
        _run(project, tmp_path)


def test_host_key_repr_hides_the_private_key():
    key = make_host_key("x")
    assert repr(key) == f"HostKey({key.fingerprint})"
    assert "PRIVATE" not in repr(key) and "PRIVATE" not in str(key)
