"""Provisioning end to end through the openbsd-vmm builder and the vmctl stand-in.

`packwrap build` runs in its own network namespace where all of 100.64.0.0/10 is local
(`ip route add local 100.64.0.0/10 dev lo`): the HTTP server binds the VM's host address
100.64.<id>.2, the stand-in publishes the guest's port 22 on 100.64.<id>.3, and packwrap
connects there as it would on vmd. Nothing outside the namespace is reachable, so the
test is hermetic by construction. The provisioning boot (`vmctl start` without -b/-B)
boots the disk through the stand-in's "vmm-bios" (VMCTL_QEMU_BIOS = the fixture's bsd.rd
with pwfixture.mode=installed). Every QEMU and supervisor is killed by pid at teardown.
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import Packwrap
from tests.e2e.test_vmm_build import INSTALL_CONF, SEED, assert_nothing_left, vmd  # noqa: F401
from tests.fixture_support import read_installed_tar

# `vmd` (imported above): the stand-in first on PATH, its state in tmp_path/vmd, every
# QEMU and supervisor it started killed by pid at teardown.
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("vmd")]

NETNS = 'ip link set lo up && ip route add local 100.64.0.0/10 dev lo && exec "$@"'
MOTD = "Provisioned through vmm.\n"


@functools.lru_cache(maxsize=1)
def netns_problem() -> str | None:
    """Why a private network namespace cannot be made here (None: it can)."""
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"needs {tool} (util-linux, iproute2)"
    proc = subprocess.run(["unshare", "-n", "sh", "-c", NETNS, "sh", "true"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    return None if proc.returncode == 0 else f"no network namespace: {proc.stderr.strip()}"


class NetnsPackwrap(Packwrap):
    """`python -m packwrap` inside `unshare -n` with 100.64.0.0/10 local."""

    def start(self, *args: str, cwd: Path) -> subprocess.Popen:
        return super().start(*args, cwd=cwd, wrap=["unshare", "-n", "sh", "-c", NETNS, "sh"])


@pytest.fixture
def netns_packwrap(tmp_path: Path):
    if problem := netns_problem():
        pytest.skip(problem)
    pw = NetnsPackwrap(tmp_path)
    try:
        yield pw
    finally:
        pw.cleanup()


@pytest.fixture
def installed_bios(monkeypatch: pytest.MonkeyPatch, fixture_media: Path):
    """The stand-in's vmm-bios boots the installed disk (extra kernel args settable)."""
    monkeypatch.setenv("VMCTL_QEMU_BIOS", str(fixture_media / "bsd.rd"))

    def kernel_args(extra: str = "") -> None:
        monkeypatch.setenv("VMCTL_QEMU_BIOS_APPEND", f"pwfixture.mode=installed {extra}".strip())

    kernel_args()
    return kernel_args


def seed_with_provisioners(parent: Path, media: Path, inline: list[str], **changes) -> Path:
    """The talk's seed template plus provisioners (communicator unset: provisioning
    because there are provisioners), its response file a generated `*.pkr.in` that
    installs the build's temporary key."""
    project = parent / "seed"
    (project / "docroot").mkdir(parents=True)
    (project / "files").mkdir()
    (project / "files" / "motd").write_text(MOTD)
    conf = INSTALL_CONF.format(hostname="provvm")
    conf += "Public ssh key for root account = {{ .SSHPublicKey }}\n"
    (project / "docroot" / "packer-auto_install.conf.pkr.in").write_text(conf)
    template = json.loads(SEED.read_text())
    builder = template["builders"][0]
    builder.update(iso_image=str(media / "install76.iso"), bios=str(media / "bsd.rd"),
                   boot_wait="1s", memory="256M", ssh_timeout="60s",
                   shutdown_command="shutdown -p now", shutdown_timeout="120s")  # fmt: skip
    builder.update(changes)
    template["provisioners"] = [
        {"type": "shell", "inline": inline},
        {"type": "file", "source": "files/motd", "destination": "/etc/motd"},
    ]
    (project / "seed.json").write_text(json.dumps(template, indent=2))
    return project


DEMO = ["echo provisioning $(hostname) at $(ifconfig 2>/dev/null | grep -o '100[.]64[.][0-9.]*3')",
        "echo via vmm > /var/db/packwrap-demo"]  # fmt: skip


def build(pw: Packwrap, project: Path):
    return pw.run("build", "seed.json", cwd=project, timeout=150)


def test_provisioners_run_on_the_second_boot(
    netns_packwrap, fixture_media, installed_bios, tmp_path
):
    project = seed_with_provisioners(tmp_path, fixture_media, DEMO, disk_format="qcow2")
    image = project / "images" / "myvm.qcow2"
    result = build(netns_packwrap, project)
    assert result.rc == 0, result.out
    assert "-B net -b " in result.out  # the install boot
    second = result.out.split("Starting VM myvm for the provision: ")[1].splitlines()[0]
    assert " -L -d " in second and second.endswith(" myvm")  # the disk: no -B, -b, -r
    assert " -B " not in second and " -b " not in second and " -r " not in second
    assert "Waiting for SSH on 100.64.1.3:22" in result.out  # vmd keeps a name's id
    assert "Starting HTTP server on 100.64.1.2:" in result.out  # the host address itself
    assert "provisioning provvm" in result.out
    tree = read_installed_tar(image, "qcow2")
    assert tree["var/db/packwrap-demo"] == b"via vmm\n"
    assert tree["etc/motd"] == MOTD.encode()
    assert not (tree.get("root/.ssh/authorized_keys") or b"").strip()  # temporary key removed
    assert_nothing_left(tmp_path / "vmd")
    # Issue 17: a changed provisioner provisions a `vmctl create -b` overlay of the cached
    # install (no install boot), flattened by `vmctl create -i` into a standalone image.
    (project / "files" / "motd").write_text("Provisioned again.\n")
    again = netns_packwrap.run("build", "-force", "seed.json", cwd=project, timeout=150)
    assert again.rc == 0, again.out
    assert "Install skipped: cached install " in again.out and "-B net" not in again.out
    assert "Creating qcow2 overlay " in again.out and "with vmctl create -i" in again.out
    info = subprocess.run(["qemu-img", "info", "--output=json", str(image)],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "backing-filename" not in json.loads(info)
    tree = read_installed_tar(image, "qcow2")
    assert tree["etc/motd"] == b"Provisioned again.\n"
    assert tree["var/db/packwrap-demo"] == b"via vmm\n"
    assert sorted(p.name for p in image.parent.iterdir()) == ["myvm.qcow2"]  # no overlay
    assert_nothing_left(tmp_path / "vmd")


def test_failing_inline_command_fails_the_build(
    netns_packwrap, fixture_media, installed_bios, tmp_path
):
    project = seed_with_provisioners(tmp_path, fixture_media, ["echo failing now", "exit 5"])
    result = build(netns_packwrap, project)
    assert result.rc == 1, result.out
    error = result.error_line
    assert "exited with status 5" in error and "failing now" in error
    assert not (project / "images" / "myvm.raw").exists()
    assert_nothing_left(tmp_path / "vmd")


def test_guest_ignoring_shutdown_is_stopped_after_the_timeout(
    netns_packwrap, fixture_media, installed_bios, tmp_path
):
    installed_bios("pwfixture.ignore_shutdown=1")
    project = seed_with_provisioners(tmp_path, fixture_media, DEMO, shutdown_timeout="6s")
    result = build(netns_packwrap, project)
    assert result.rc == 1, result.out
    assert "Stopping VM myvm by force: vmctl stop -f -w myvm" in result.out
    error = result.error_line
    assert "timeout while waiting for the machine to shut down (6s)" in error
    assert "stopped by force" in error
    assert_nothing_left(tmp_path / "vmd")


def test_wrong_password_fails_after_the_configured_attempts(
    netns_packwrap, fixture_media, installed_bios, tmp_path
):
    project = seed_with_provisioners(tmp_path, fixture_media, DEMO, ssh_password="wrong-pw",
                                     ssh_handshake_attempts=2)  # fmt: skip
    result = build(netns_packwrap, project)
    assert result.rc == 1, result.out
    error = result.error_line
    assert "SSH to root@100.64.1.3:22 failed after 2 handshake attempts" in error
    assert "authentication failed" in error
    assert "wrong-pw" not in result.out
    assert_nothing_left(tmp_path / "vmd")


def test_communicator_none_skips_the_second_boot(
    netns_packwrap, fixture_media, installed_bios, tmp_path
):
    project = seed_with_provisioners(tmp_path, fixture_media, DEMO, communicator="none")
    result = build(netns_packwrap, project)
    assert result.rc == 0, result.out
    assert "for the provision" not in result.out and "Waiting for SSH" not in result.out
    tree = read_installed_tar(project / "images" / "myvm.raw", "raw")
    assert "var/db/packwrap-demo" not in tree
    with contextlib.suppress(KeyError):
        assert not tree["root/.ssh/authorized_keys"].strip()  # no temporary key made
    assert_nothing_left(tmp_path / "vmd")
