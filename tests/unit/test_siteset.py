"""Site sets: tar contents rooted at /, determinism, install.site, index.txt, StepSiteSet."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from pathlib import Path

import pytest

from packwrap.autoinstall.siteset import SITE_SUBDIR, build_site_sets
from packwrap.build.state import State
from packwrap.build.steps.site_set import StepSiteSet
from packwrap.errors import PackwrapError
from tests.state_support import make_state

# install.sub install_http: the set names it takes from index.txt
INDEX_RE = re.compile(r"^.* ([a-zA-Z][a-zA-Z0-9._-]+)$")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "rc.conf.local").write_text("pf=NO\n")
    (root / "root" / ".ssh").mkdir(parents=True)
    key = root / "root" / ".ssh" / "authorized_keys"
    key.write_text("ssh-ed25519 AAAA me\n")
    key.chmod(0o600)
    (root / "install.site").write_text("#!/bin/sh\necho hi >> /etc/motd\n")
    (root / "install.site").chmod(0o644)  # made executable in the set
    (root / "etc" / "localtime").symlink_to("/usr/share/zoneinfo/UTC")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref\n")
    return root


def read_tar(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as tar:
        return tar.getmembers()


def test_site_set_contents_and_index(site: Path, tmp_path: Path):
    out = tmp_path / "out"
    names = build_site_sets(site, out, release="7.6")
    assert names == ["site76.tgz"]
    members = read_tar(out / "site76.tgz")
    assert [m.name for m in members] == [
        "./etc/installurl",  # else the installer records the build's server there
        "./etc/localtime",
        "./etc/rc.conf.local",
        "./install.site",
        "./root/.ssh/authorized_keys",
    ]
    by_name = {m.name: m for m in members}
    assert all(m.uid == 0 and m.gid == 0 and m.mtime == 0 for m in members)
    assert all(m.uname == "root" and m.gname == "wheel" for m in members)
    assert by_name["./install.site"].mode == 0o755
    assert by_name["./root/.ssh/authorized_keys"].mode == 0o600
    assert by_name["./etc/localtime"].issym()
    assert by_name["./etc/localtime"].linkname == "/usr/share/zoneinfo/UTC"
    with tarfile.open(out / "site76.tgz", "r:gz") as tar:
        assert tar.extractfile("./etc/rc.conf.local").read() == b"pf=NO\n"
        assert (
            tar.extractfile("./etc/installurl").read() == b"https://cdn.openbsd.org/pub/OpenBSD\n"
        )

    index = (out / "index.txt").read_text().splitlines()
    assert len(index) == 1
    m = INDEX_RE.match(index[0])
    assert m and m.group(1) == "site76.tgz"
    assert str((out / "site76.tgz").stat().st_size) in index[0].split()


def test_site_set_is_deterministic(site: Path, tmp_path: Path):
    build_site_sets(site, tmp_path / "a", release="7.6")
    os.utime(site / "etc" / "rc.conf.local", (1_700_000_000, 1_700_000_000))
    build_site_sets(site, tmp_path / "b", release="7.6")
    a = (tmp_path / "a" / "site76.tgz").read_bytes()
    assert a == (tmp_path / "b" / "site76.tgz").read_bytes()
    assert a[4:8] == b"\0\0\0\0"  # gzip header mtime


def test_per_host_site_set_name(site: Path, tmp_path: Path):
    names = build_site_sets(
        site, tmp_path, release="7.8", hostname="web1.example.org", per_host=True
    )
    assert names == ["site78-web1.tgz"]
    assert (tmp_path / "index.txt").read_text().rstrip().endswith(" site78-web1.tgz")
    with pytest.raises(PackwrapError, match="hostname"):
        build_site_sets(site, tmp_path, release="7.6", per_host=True)
    with pytest.raises(PackwrapError, match="cannot name a site set"):
        build_site_sets(site, tmp_path, release="7.6", hostname="bad host", per_host=True)
    with pytest.raises(PackwrapError, match="not a directory"):
        build_site_sets(tmp_path / "nope", tmp_path, release="7.6")


def _state(project: Path, overlay: Path | None) -> State:
    state = make_state(build="qemu.test", template_dir=project)
    if overlay is not None:
        state.data["http_overlay_dir"] = str(overlay)
    return state


def test_step_site_set_builds_into_the_overlay(site: Path, tmp_path: Path):
    project = site.parent
    (project / ".packwrap").mkdir()
    (project / ".packwrap" / "project.json").write_text(
        json.dumps({"release": "7.7", "values": {"hostname": "db1", "site_set_per_host": True}})
    )
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    state = _state(project, overlay)
    StepSiteSet().run(state)
    assert state.data["site_sets"] == ["site77-db1.tgz"]
    assert (overlay / SITE_SUBDIR / "site77-db1.tgz").is_file()
    assert (overlay / SITE_SUBDIR / "index.txt").is_file()
    names = [m.name for m in read_tar(overlay / SITE_SUBDIR / "site77-db1.tgz")]
    assert "./install.site" in names


def test_step_site_set_without_site_dir_or_overlay(tmp_path: Path, site: Path):
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    StepSiteSet().run(_state(tmp_path / "empty", overlay))  # no site/: nothing to do
    assert not (overlay / SITE_SUBDIR).exists()
    with pytest.raises(PackwrapError, match="overlay"):
        StepSiteSet(release="7.6").run(_state(site.parent, None))
    with pytest.raises(PackwrapError, match="release"):
        StepSiteSet().run(_state(site.parent, tmp_path))
    with pytest.raises(PackwrapError, match="does not exist"):
        StepSiteSet(site_dir="missing", release="7.6").run(_state(site.parent, tmp_path))


def test_tar_extracts_under_a_root(site: Path, tmp_path: Path):
    build_site_sets(site, tmp_path / "o", release="7.6")
    data = (tmp_path / "o" / "site76.tgz").read_bytes()
    target = tmp_path / "mnt"
    target.mkdir()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(target, filter="tar")
    assert (target / "etc" / "rc.conf.local").read_text() == "pf=NO\n"
    assert os.access(target / "install.site", os.X_OK)


def test_step_site_set_refuses_a_missing_site_dir_the_project_asks_for(tmp_path: Path):
    project = tmp_path / "proj"
    (project / ".packwrap").mkdir(parents=True)
    (project / ".packwrap" / "project.json").write_text(
        json.dumps({"release": "7.6", "values": {"site_set": True}})
    )
    with pytest.raises(PackwrapError, match="installer would abort"):
        StepSiteSet().run(_state(project, tmp_path))


def test_step_site_set_release_from_the_install_media(site: Path, tmp_path: Path):
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    state = _state(site.parent, overlay)
    state.config["iso_url"] = "https://cdn.openbsd.org/pub/OpenBSD/7.7/amd64/install77.iso"
    StepSiteSet().run(state)
    assert state.data["site_sets"] == ["site77.tgz"]


def test_installurl_from_the_mirror_or_the_users_own(site: Path, tmp_path: Path):
    from packwrap.build.steps.site_set import _installurl

    assert _installurl({}) == "https://cdn.openbsd.org/pub/OpenBSD"
    mirror = {"sets_location": "http", "sets_http_server": "http://mirror.example:8080"}
    assert _installurl(mirror) == "http://mirror.example:8080/pub/OpenBSD"
    mirror = {
        "sets_location": "http",
        "sets_http_server": "ftp.eu",
        "sets_http_directory": "OpenBSD/7.6/amd64",
    }
    assert _installurl(mirror) == "https://ftp.eu/OpenBSD"
    (site / "etc" / "installurl").write_text("https://mine.example/pub/OpenBSD\n")
    build_site_sets(site, tmp_path / "o", release="7.6")
    with tarfile.open(tmp_path / "o" / "site76.tgz", "r:gz") as tar:
        names = tar.getnames()
        assert names.count("./etc/installurl") == 1
        assert tar.extractfile("./etc/installurl").read() == b"https://mine.example/pub/OpenBSD\n"
