"""openbsd-vmm end to end: `packwrap build` with the vmctl stand-in (scripts/vmctl-qemu)
first on PATH, on the bsd.rd stand-in fixture. Every QEMU and supervisor the stand-in
started is killed by pid at teardown (its state dir lists them)."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, pid_alive
from tests.fixture_support import read_installed_tar
from tests.unit.test_openbsd_hosts_doc import USER, as_user, fenced, walkthrough

pytestmark = pytest.mark.e2e

STANDIN = REPO / "scripts" / "vmctl-qemu"
SEED = REPO / "tests" / "data" / "seed-demo.json"
INSTALL_CONF = """\
System hostname = {hostname}
Password for root account = *************
What timezone are you in = UTC
Location of sets = cd0
Directory does not contain SHA256.sig. Continue without verification = yes
"""


@pytest.fixture
def vmd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A private "vmd": the stand-in first on PATH, its state in tmp_path/vmd."""
    state = tmp_path / "vmd"
    monkeypatch.setenv("PATH", f"{STANDIN}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("VMCTL_QEMU_STATE", str(state))
    monkeypatch.delenv("PACKWRAP_VMCTL", raising=False)
    try:
        yield state
    finally:
        for pid in started_pids(state):
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def started_pids(state: Path) -> list[int]:
    try:
        return [int(p) for p in (state / "pids").read_text().split()]
    except FileNotFoundError:
        return []


def running_vms(state: Path) -> list[str]:
    out = subprocess.run(["vmctl", "status"], capture_output=True, text=True, check=False).stdout
    lines = out.splitlines()
    assert lines and lines[0].split()[0] == "ID", out
    return lines[1:]


def assert_nothing_left(state: Path, expected: list[str] | None = None) -> None:
    """No VM running (vm.conf VMs listed as stopped: `expected`), no process left."""
    rows = running_vms(state)
    assert [r.split()[-1] for r in rows] == (expected or []), rows
    assert all(r.split()[-2] == "stopped" for r in rows), rows
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in started_pids(state)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in started_pids(state) if pid_alive(p)]


def seed_project(parent: Path, media: Path, name: str = "seed", **changes) -> Path:
    """The talk's demo template, paths adapted to the fixture (changes: other keys)."""
    project = parent / name
    (project / "docroot").mkdir(parents=True)
    hostname = changes.pop("hostname", "seedvm")
    (project / "docroot" / "packer-auto_install.conf").write_text(
        INSTALL_CONF.format(hostname=hostname)
    )
    template = json.loads(SEED.read_text())
    builder = template["builders"][0]
    builder["iso_image"] = str(media / "install76.iso")
    builder["bios"] = str(media / "bsd.rd")
    builder.update(changes)
    (project / "seed.json").write_text(json.dumps(template, indent=2))
    return project


def test_seed_demo_builds(packwrap, fixture_media, vmd, tmp_path, monkeypatch):
    monkeypatch.setenv("VMCTL_QEMU_FIRST_ID", "300")  # id 300: 100.65.44.2 (octet carry)
    project = seed_project(tmp_path, fixture_media)
    result = packwrap.run("build", "seed.json", cwd=project, timeout=120)
    assert result.rc == 0, result.out
    assert "VM id 300" in result.out and "host 100.65.44.2" in result.out
    assert "-B net -b " in result.out  # bios set, no boot_device: the VM ends at reboot
    assert "Image: myvm" in result.out
    installed = read_installed_tar(project / "images" / "myvm.raw", "raw")
    assert installed["etc/myname"].startswith(b"seedvm")
    log = (project / ".packwrap" / "logs" / "myvm.log").read_text(errors="replace")
    assert "/packer-auto_install.conf" in log  # the typed URL, echoed on the console
    assert_nothing_left(vmd)
    # Issue 17: the same install again comes from the install cache, with no VM at all.
    again = packwrap.run("build", "-force", "seed.json", cwd=project, timeout=60)
    assert again.rc == 0, again.out
    assert "Install skipped: cached install " in again.out and "Starting VM" not in again.out
    assert read_installed_tar(project / "images" / "myvm.raw", "raw") == installed
    assert_nothing_left(vmd)


def simulated_user(monkeypatch: pytest.MonkeyPatch) -> int:
    """The stand-in takes its caller to be USER (tests run as root; see its README)."""
    if os.getuid() != 0:
        pytest.skip("simulating an unprivileged user needs root")
    monkeypatch.setenv("VMCTL_QEMU_USER", USER)
    return pwd.getpwnam(USER).pw_uid


def test_blueprint_project_builds_as_a_user_with_the_documented_vm_conf(
    packwrap, fixture_media, vmd, tmp_path, monkeypatch
):
    """Mode (a) of docs/openbsd-hosts.md: an unprivileged user (not in wheel), the
    documented vm.conf template, the blueprint's vm_template."""
    part, _ = walkthrough()
    vmd.mkdir()
    (vmd / "vm.conf").write_text(as_user(next(b for b in fenced(part) if "vm.conf" in b)))
    args = [
        "new", "openbsd-76", "img", "--builder", "openbsd-vmm", "--no-root-password",
        "--var", f"iso_url={fixture_media / 'install76.iso'}", "--var", "communicator=none",
        "--var", "disk_size=2G", "--var", "hostname=bpvm", "--var", "memory=256",
        "--var", "boot_expect_timeout=60s",
    ]  # fmt: skip
    made = packwrap.run(*args, cwd=tmp_path)
    assert made.rc == 0, made.out
    uid = simulated_user(monkeypatch)
    result = packwrap.run("build", ".", cwd=tmp_path / "img", timeout=150)
    assert result.rc == 0, result.out
    assert "-t openbsd-builder -m 256M -B cdrom -r " in result.out
    disk = tmp_path / "img" / "output" / "openbsd-vmm" / "openbsd-76.qcow2"
    assert disk.stat().st_uid == uid  # vmctl create ran as the user
    installed = read_installed_tar(disk, "qcow2")
    assert installed["etc/myname"].startswith(b"bpvm")  # what install.conf said
    manifest = json.loads((tmp_path / "img" / "packer-manifest.json").read_text())
    assert manifest["builds"][0]["artifact_id"] == "VMM"
    assert manifest["builds"][0]["files"][0]["name"] == str(disk)
    assert_nothing_left(vmd, expected=["openbsd-builder"])


def test_doas_mode_with_the_documented_doas_conf(packwrap, fixture_media, vmd, tmp_path,
                                                 monkeypatch):  # fmt: skip
    """Mode (b): `doas = true`, no template, the documented doas.conf rule (through the
    doas stand-in): readiness, start, console and stop through `doas -n vmctl`, the
    image made without doas (the user's)."""
    _, part = walkthrough()
    rules = next(b for b in fenced(part) if b.startswith("# /etc/doas.conf"))
    vmctl = str(STANDIN / "vmctl")
    (tmp_path / "doas.conf").write_text(as_user(rules).replace("/usr/sbin/vmctl", vmctl))
    monkeypatch.setenv("VMCTL_QEMU_DOAS_CONF", str(tmp_path / "doas.conf"))
    monkeypatch.setenv("VMCTL_QEMU_DOAS_LOG", str(tmp_path / "doas.log"))
    monkeypatch.setenv("PATH", f"{STANDIN / 'doas-standin'}{os.pathsep}{os.environ['PATH']}")
    uid = simulated_user(monkeypatch)
    project = seed_project(tmp_path, fixture_media, doas=True)
    result = packwrap.run("build", "seed.json", cwd=project, timeout=120)
    assert result.rc == 0, result.out
    assert (project / "images" / "myvm.raw").stat().st_uid == uid
    ran = [ln.split()[1] for ln in (tmp_path / "doas.log").read_text().splitlines()]
    assert {"status", "start", "console"} <= set(ran) and "create" not in ran
    log = (project / ".packwrap" / "logs" / "myvm.log").read_text(errors="replace")
    assert "/packer-auto_install.conf" in log  # typed through vmctl console
    monkeypatch.delenv("VMCTL_QEMU_USER")
    assert_nothing_left(vmd)


def test_vm_that_never_reboots_times_out_and_is_stopped(packwrap, fixture_media, vmd, tmp_path):
    # Nothing typed: the installer waits at its prompt forever. The (empty) boot command
    # waits for that prompt, so install_timeout starts once the guest is there, however
    # slowly a loaded host boots it (a blind boot_wait of 5 s was not always enough).
    project = seed_project(tmp_path, fixture_media, boot_command=[""], boot_expect=["(S)hell? "],
                           boot_expect_timeout="120s", install_timeout="4s")  # fmt: skip
    result = packwrap.run("build", "seed.json", cwd=project, timeout=200)
    assert result.rc != 0
    assert "did not finish within 4.0s (install_timeout)" in result.out, result.out
    assert "Stopping VM myvm" in result.out
    assert "(S)hell?" in result.out  # the console's last lines come with the error
    assert not (project / "images" / "myvm.raw").exists()
    assert_nothing_left(vmd)


def test_ctrl_c_mid_install_leaves_no_vm_and_no_disk(packwrap, fixture_media, vmd, tmp_path):
    project = seed_project(tmp_path, fixture_media, boot_command=[], install_timeout="10m")
    proc = packwrap.start("build", "seed.json", cwd=project)
    packwrap.wait_for(proc, "Waiting for the install to finish", timeout=60)
    assert len(running_vms(vmd)) == 1
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    out = packwrap.output(proc)
    assert proc.returncode != 0, out
    assert "Stopping VM myvm" in out
    assert not (project / "images" / "myvm.raw").exists()
    assert_nothing_left(vmd)


def test_parallel_builds_get_their_own_ids_and_addresses(packwrap, fixture_media, vmd, tmp_path):
    projects = [
        seed_project(tmp_path, fixture_media, name=f"p{i}", vm_name=f"vm{i}", hostname=f"host{i}")
        for i in (1, 2)
    ]
    procs = [packwrap.start("build", "seed.json", cwd=p) for p in projects]
    for proc in procs:
        proc.wait(180)
    outs = [packwrap.output(p) for p in procs]
    for proc, out in zip(procs, outs, strict=True):
        assert proc.returncode == 0, out
    ids = {out.split("VM id ")[1].split(",")[0] for out in outs}
    hosts = {out.split(" host ")[1].split(",")[0] for out in outs}
    assert ids == {"1", "2"} and hosts == {"100.64.1.2", "100.64.2.2"}
    for i, project in enumerate(projects, 1):
        installed = read_installed_tar(project / "images" / f"vm{i}.raw", "raw")
        assert installed["etc/myname"].startswith(f"host{i}".encode())
    assert_nothing_left(vmd)
