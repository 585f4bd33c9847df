"""Issue 18 on the fixture: installs that cannot fail on the network.

A static address: QEMU's user network moves into the guest's subnet, so the installer,
after it has configured 192.0.2.10/24, still fetches the disklabel template from the
build's server. Sets over HTTP: `fetch-iso --sets` fills the cache from a (loopback)
mirror, the build serves them on its hermetic network, and the installer verifies
SHA256.sig itself (no "Continue without verification" in the file). Both boot the fast
kernel path of test_qemu_build.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import new_project, pid_alive
from tests.e2e.test_qemu_build import add_kernel_source, answers, build, installed
from tests.mirror_support import serve

pytestmark = pytest.mark.e2e


def _http_log(project: Path) -> str:
    return (project / ".packwrap" / "logs" / "packwrap-qemu.kernel.log").read_text()


def test_static_address_build_reaches_the_builders_server(packwrap, tmp_path, fixture_media):
    project = new_project(packwrap, tmp_path, fixture_media,
                          "ipv4=192.0.2.10/24", "ipv4_route=192.0.2.1")  # fmt: skip
    add_kernel_source(project, fixture_media)
    result = build(packwrap, project, "qemu.kernel")
    assert result.rc == 0, result.out
    assert "user network 192.0.2.0/24: host 192.0.2.1, HTTP 192.0.2.3" in _http_log(project)
    assert "net=192.0.2.0/24,host=192.0.2.1,dns=192.0.2.2,dhcpstart=192.0.2.4" in result.out
    # fetched after the static address was configured, from inside its subnet
    assert "HTTP GET '/disklabel' -> 200" in _http_log(project)
    tree = installed(project / "output" / "kernel" / "kernel.raw", "raw")
    assert tree["etc/hostname.vio0"].decode().split() == ["inet", "192.0.2.10", "255.255.255.0"]
    assert tree["etc/mygate"].decode().strip() == "192.0.2.1"
    assert not [pid for pid in packwrap.qemu_pids if pid_alive(pid)]


def test_sets_over_http_from_the_verified_cache(packwrap, tmp_path, fixture_media, monkeypatch):
    monkeypatch.setenv("PACKWRAP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PACKWRAP_SIGNIFY_DIR", str(fixture_media))  # the fixture's release key
    project = new_project(packwrap, tmp_path, fixture_media, "sets_location=http")
    conf = answers(project)
    assert conf["http server"] == "{{ .HTTPIP }}:{{ .HTTPPort }}"
    assert conf["server directory"] == "pub/OpenBSD/7.6/amd64"
    assert not [k for k in conf if "continue without verification" in k]
    with serve(fixture_media / "mirror" / "pub" / "OpenBSD") as mirror:
        fetched = packwrap.run("fetch-iso", "--release", "7.6", "--sets",
                               "--mirror", mirror.url, cwd=project)  # fmt: skip
    assert fetched.rc == 0, fetched.out
    assert "sets OK" in fetched.out
    add_kernel_source(project, fixture_media)
    result = build(packwrap, project, "qemu.kernel")
    assert result.rc == 0, result.out
    log = _http_log(project)
    assert "HTTP GET '/pub/OpenBSD/7.6/amd64/SHA256.sig' -> 200" in log
    assert "HTTP GET '/pub/OpenBSD/7.6/amd64/base76.tgz' -> 200" in log
    tree = installed(project / "output" / "kernel" / "kernel.raw", "raw")
    # the installer kept the SHA256 it verified with the release key
    assert b"base76.tgz" in (tree["var/db/installed.SHA256"] or b"")
    assert not [pid for pid in packwrap.qemu_pids if pid_alive(pid)]
