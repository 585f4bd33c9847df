"""A blueprint project pins the guest's SSH host key it shipped in the site set (qemu, fixture).

`packwrap new ... --var site_set=true --var ssh_host_key_pin=true`: the build makes a host
key pair, the site set carries it to etc/ssh/, the fixture's installed boot serves it (like
OpenBSD's sshd), and the communicator pins its fingerprint. Every QEMU packwrap reports is
killed by pid at teardown (tests.e2e.conftest).
"""

from __future__ import annotations

import re

import pytest

from packwrap.autoinstall.hostkey import public_fingerprint
from tests.e2e.test_provision_qemu import (
    MOTD,
    build,
    disk,
    host_key_fingerprint,
    no_qemu_left,
    project_with,
)
from tests.fixture_support import read_installed_tar

pytestmark = pytest.mark.e2e


def test_host_key_shipped_in_the_site_set_is_pinned(packwrap, tmp_path, fixture_media):
    project = project_with(
        packwrap, tmp_path, fixture_media, variables=("site_set=true", "ssh_host_key_pin=true")
    )
    result = build(packwrap, project)
    assert result.rc == 0, result.out

    tree = read_installed_tar(disk(project), "raw")
    private = tree["etc/ssh/ssh_host_ed25519_key"]
    public = tree["etc/ssh/ssh_host_ed25519_key.pub"].decode()
    assert private.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    injected = public_fingerprint(public)
    assert injected != host_key_fingerprint(fixture_media)  # not the fixture's own key
    m = re.search(r"SSH host key ssh-ed25519 (SHA256:\S+) \(pinned\)", result.out)
    assert m, result.out
    assert m.group(1) == injected
    assert private.decode() not in result.out  # never logged
    assert tree["etc/motd"] == MOTD.encode()  # provisioning ran over the pinned connection
    assert no_qemu_left(packwrap)
