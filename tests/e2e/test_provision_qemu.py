"""Provisioning end to end through the qemu builder, on the fixture.

The project comes from `packwrap new ... --var communicator=ssh` (so its install.conf
answers `Public ssh key for root account = {{ .SSHPublicKey }}`); a kernel source next to
it installs with bsd.rd (-kernel) and boots the installed disk for provisioning with the
same kernel and `pwfixture.mode=installed` (the fixture's disk is a tar, not bootable).
Every QEMU packwrap reports is killed by pid at teardown (tests.e2e.conftest).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import Packwrap, new_project, pid_alive
from tests.fixture_support import BASE_APPEND, read_installed_tar

pytestmark = pytest.mark.e2e

APPEND = BASE_APPEND  # the fixture's kernel command line, one definition
SOURCE = """
source "qemu" "prov" {{
  iso_url          = var.iso_url
  iso_checksum     = var.iso_checksum
  kernel           = "{media}/bsd.rd"
  initrd           = "{media}/bsd.rd.initrd"
  kernel_args      = "{append} pwfixture.cd=1"
  provision_kernel = "{media}/bsd.rd"
  provision_initrd = "{media}/bsd.rd.initrd"
  provision_kernel_args = "{append} pwfixture.mode=installed{extra_args}"
  output_directory = "${{var.output_directory}}/prov"
  vm_name          = "prov.raw"
  format           = "raw"
  disk_size        = var.disk_size
  memory           = var.memory
  accelerator      = "tcg"
  hermetic_network = true
  http_directory   = "http"
  communicator     = "ssh"
  ssh_username     = "root"
  ssh_timeout      = "60s"
  shutdown_command = "shutdown -p now"
  shutdown_timeout = "{shutdown_timeout}"
  boot_command     = ["A<enter>", "{url}<enter>"]
  boot_expect      = ["(A)utoinstall or (S)hell? ", "Response file location?"]
  boot_expect_timeout = "120s"
{extra}
}}

build {{
  sources = ["source.qemu.prov"]
  provisioner "shell" {{
    inline = {inline}
  }}
  provisioner "file" {{
    source      = "files/motd"
    destination = "/etc/motd"
  }}
}}
"""
DEMO_INLINE = '["echo provisioning $(hostname)", "echo packwrap was here > /var/db/packwrap-demo"]'
MOTD = "Provisioned by packwrap.\n"
URL = "http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.conf"


def project_with(pw: Packwrap, tmp_path: Path, media: Path, *, inline: str = DEMO_INLINE,
                 extra: str = "", extra_args: str = "", shutdown_timeout: str = "120s",
                 variables: tuple[str, ...] = ()) -> Path:  # fmt: skip
    """A blueprint project (`variables`: more `--var`s for `packwrap new`) whose template is
    SOURCE: the fixture kernel, communicator ssh, a shell and a file provisioner."""
    project = new_project(pw, tmp_path, media, "communicator=ssh", "hostname=prov", *variables)
    assert "{{ .SSHPublicKey }}" in (project / "http" / "install.conf.pkr.in").read_text()
    (project / "files").mkdir()
    (project / "files" / "motd").write_text(MOTD)
    (project / "prov.pkr.hcl").write_text(
        SOURCE.format(
            media=media,
            append=APPEND,
            inline=inline,
            extra=extra,
            url=URL,
            extra_args=extra_args,
            shutdown_timeout=shutdown_timeout,
        )  # fmt: skip
    )
    return project


def build(pw: Packwrap, project: Path):
    return pw.run("build", "-only=qemu.prov", ".", cwd=project, timeout=120)


def disk(project: Path) -> Path:
    return project / "output" / "prov" / "prov.raw"


def no_qemu_left(pw: Packwrap) -> bool:
    return not [pid for pid in pw.qemu_pids if pid_alive(pid)]


def host_key_fingerprint(media: Path) -> str:
    """SHA256 fingerprint of the fixture's (stable) SSH host key, as ssh-keygen -l shows it."""
    blob = base64.b64decode((media / "ssh_host_ed25519_key.pub").read_text().split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def test_provisioners_change_the_artifact_and_the_temporary_key_is_removed(
    packwrap, tmp_path, fixture_media
):
    pin = host_key_fingerprint(fixture_media)
    project = project_with(packwrap, tmp_path, fixture_media,
                           extra=f'  ssh_host_key_fingerprint = "{pin}"')  # fmt: skip
    result = build(packwrap, project)
    assert result.rc == 0, result.out
    assert f"SSH host key ssh-ed25519 {pin} (pinned)" in result.out
    assert result.out.count("Starting QEMU") == 2  # install run, then the disk run
    assert "provisioning prov" in result.out  # the guest's output, streamed
    assert "Removing the temporary SSH key from the image" in result.out
    tree = read_installed_tar(disk(project), "raw")
    assert tree["var/db/packwrap-demo"] == b"packwrap was here\n"
    assert tree["etc/motd"] == MOTD.encode()
    assert b"packwrap-qemu.prov" not in (tree.get("root/.ssh/authorized_keys") or b"")
    log = (project / ".packwrap" / "logs" / "packwrap-qemu.prov.log").read_text()
    assert "provisioning prov" in log
    assert no_qemu_left(packwrap)
    rebuild_from_the_install_cache(packwrap, project, first=result.out)


def rebuild_from_the_install_cache(pw: Packwrap, project: Path, first: str) -> None:
    """Issue 17: the same install inputs, another provisioner: the install is skipped and
    the artifact, standalone, has the new provisioner's change (and no temporary key)."""
    assert "Install cache: no cached install for key" in first
    stored = re.search(r"Install cached as ([0-9a-f]{12}) ", first)
    assert stored, first
    template = project / "prov.pkr.hcl"
    template.write_text(template.read_text().replace("packwrap was here", "second build"))
    again = pw.run("build", "-only=qemu.prov", "-force", ".", cwd=project, timeout=120)
    assert again.rc == 0, again.out
    assert f"Install skipped: cached install {stored[1]} from " in again.out
    assert again.out.count("Starting QEMU") == 1  # the provisioning boot only
    argv = ["qemu-img", "info", "--output=json", str(disk(project))]
    info = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    assert info["format"] == "raw" and "backing-filename" not in info  # standalone
    tree = read_installed_tar(disk(project), "raw")
    assert tree["var/db/packwrap-demo"] == b"second build\n"
    assert tree["etc/motd"] == MOTD.encode()
    assert b"packwrap-qemu.prov" not in (tree.get("root/.ssh/authorized_keys") or b"")
    assert no_qemu_left(pw)


def test_temporary_key_kept_when_asked(packwrap, tmp_path, fixture_media):
    project = project_with(packwrap, tmp_path, fixture_media,
                           extra="  ssh_clear_authorized_keys = false")  # fmt: skip
    result = build(packwrap, project)
    assert result.rc == 0, result.out
    keys = read_installed_tar(disk(project), "raw")["root/.ssh/authorized_keys"].decode()
    assert keys.startswith("ssh-ed25519 ") and "packwrap-qemu.prov" in keys


def test_failing_inline_command_fails_the_build_with_its_status(packwrap, tmp_path, fixture_media):
    inline = '["echo about to fail", "exit 7", "echo never"]'
    project = project_with(packwrap, tmp_path, fixture_media, inline=inline)
    result = build(packwrap, project)
    assert result.rc == 1, result.out
    error = result.error_line
    assert "exited with status 7" in error and "about to fail" in error
    assert "never" not in result.out
    assert not disk(project).exists()  # -on-error=cleanup removed the partial artifact
    assert no_qemu_left(packwrap)


def test_guest_ignoring_the_shutdown_command_is_stopped_after_the_timeout(
    packwrap, tmp_path, fixture_media
):
    # shutdown_timeout also bounds the install's own power-off wait (Packer's one option):
    # 20 s leaves a loaded CI machine room for the install
    project = project_with(packwrap, tmp_path, fixture_media, shutdown_timeout="20s",
                           extra_args=" pwfixture.ignore_shutdown=1")  # fmt: skip
    result = build(packwrap, project)
    assert result.rc == 1, result.out
    assert "Guest did not power off within 20s: stopping it by force" in result.out
    error = result.error_line
    assert "timeout while waiting for the machine to shut down (20s)" in error
    assert "stopped by force" in error
    assert no_qemu_left(packwrap)


def test_wrong_password_fails_after_the_configured_attempts(packwrap, tmp_path, fixture_media):
    extra = '  ssh_password = "not-the-password"\n  ssh_handshake_attempts = 2'
    project = project_with(packwrap, tmp_path, fixture_media, extra=extra)
    result = build(packwrap, project)
    assert result.rc == 1, result.out
    error = result.error_line
    assert "SSH to root@127.0.0.1:" in error
    assert "failed after 2 handshake attempts: authentication failed" in error
    assert "not-the-password" not in result.out  # never echoed
    assert no_qemu_left(packwrap)


def test_a_host_key_other_than_the_pinned_one_fails_the_build(packwrap, tmp_path, fixture_media):
    wrong = "SHA256:" + "A" * 43
    project = project_with(packwrap, tmp_path, fixture_media,
                           extra=f'  ssh_host_key_fingerprint = "{wrong}"')  # fmt: skip
    result = build(packwrap, project)
    assert result.rc == 1, result.out
    error = result.error_line
    assert "SSH host key mismatch for 127.0.0.1:" in error
    assert f"expected {wrong}, got {host_key_fingerprint(fixture_media)}" in error
    assert "Provisioning with" not in result.out
    assert no_qemu_left(packwrap)


def test_a_generalized_syspatched_build_with_a_record_leaves_a_clean_clone(
    packwrap, tmp_path, fixture_media
):
    """syspatch (3 fake patches, the first updating syspatch itself), the build record and
    generalize, on a guest whose kernel relink runs 6 s from the first SSH session (its
    syspatch refuses to run meanwhile, as the real one does)."""
    extra = "  syspatch = true\n  build_record = true\n  generalize = true"
    project = project_with(packwrap, tmp_path, fixture_media, extra=extra,
                           extra_args=" pwfixture.syspatches=3 pwfixture.relink=6")  # fmt: skip
    template = project / "prov.pkr.hcl"
    text = template.read_text().rstrip()
    template.write_text(text.removesuffix("}") + '  post-processor "manifest" {}\n}\n')
    # the relink (6 s) and five more SSH steps on top of a provisioned build
    result = packwrap.run("build", "-only=qemu.prov", ".", cwd=project, timeout=180)
    assert result.rc == 0, result.out
    out = result.out
    assert "reorder_kernel is relinking the kernel: waiting" in out
    assert "kernel relink finished after" in out
    assert "Installing patch 001_syspatch" in out and "Installing patch 003_fake" in out
    assert "syspatch: nothing more to apply (after 3 runs)" in out
    assert "Generalize: zero-filling free space" in out
    assert "zero-filled the free space of /" in out
    tree = read_installed_tar(disk(project), "raw")
    assert tree["var/db/packwrap-demo"] == b"packwrap was here\n"  # provisioned
    left = [n for n in tree if n.startswith(("etc/ssh/ssh_host_", "var/db/dhcpleased/"))
            or n.endswith("history") or n in ("etc/random.seed", "var/db/host.random")
            or ".packwrap-zero" in n]  # fmt: skip
    assert left == []
    # rc's shutdown wrote new seeds after generalize; its one-shot rc.shutdown hook removed
    # them, then itself (the fixture runs rc's store_random and rc.shutdown at power-off)
    assert [n for n in tree if n.startswith("etc/rc.shutdown")] == []
    assert b"lladdr" not in tree["etc/hostname.vio0"]
    assert b"packwrap-qemu.prov" not in (tree.get("root/.ssh/authorized_keys") or b"")
    assert sorted(n for n in tree if n.endswith("/rollback.tgz")) == [
        "var/syspatch/76-001_syspatch/rollback.tgz",
        "var/syspatch/76-002_fake/rollback.tgz",
        "var/syspatch/76-003_fake/rollback.tgz",
    ]
    record = dict(
        line.split(": ", 1)
        for line in tree["etc/packwrap-build"].decode().splitlines()
        if not line.startswith("#")
    )
    iso_sha = hashlib.sha256((fixture_media / "install76.iso").read_bytes()).hexdigest()
    assert record["medium_sha256"] == iso_sha
    assert [record[k] for k in ("blueprint", "release", "build")] == [
        "openbsd-76",
        "7.6",
        "qemu.prov",
    ]
    assert len(record["response_file_sha256"]) == 64
    manifest = json.loads((project / "packer-manifest.json").read_text())
    assert manifest["builds"][-1]["custom_data"] == record
    assert no_qemu_left(packwrap)
