"""End to end on the QEMU fixture (a faithful 7.6 installer stand-in): a rendered
install.conf, its disklabel template and a site set install unattended, and what they
asked for is in the installed system.

Marked e2e: boots QEMU (TCG), a few seconds each.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from packwrap.autoinstall.passwords import hash_password
from packwrap.autoinstall.render import render_disklabel, render_install_conf
from packwrap.autoinstall.siteset import SITE_SUBDIR, build_site_sets
from tests.fixture_support import (
    GUEST_HTTP_IP,
    DocrootServer,
    QemuGuest,
    autoinstall,
    create_disk,
    fixture_dir,
    read_installed_tar,
    require_qemu,
)

pytestmark = pytest.mark.e2e

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHBhY2t3cmFwIGUyZSB0ZXN0IGtleQ== alice@test"
ROOT_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHJvb3Qga2V5IGZvciB0aGUgZTJlIHRlc3Q= root@test"


def _pkr_in(text: str) -> str:
    """What StepHTTPServer does to install.conf.pkr.in in hermetic QEMU mode."""
    return text.replace("{{ .HTTPIP }}", GUEST_HTTP_IP).replace("{{ .HTTPPort }}", "80")


def _site(tmp: Path) -> Path:
    site = tmp / "site"
    (site / "etc").mkdir(parents=True)
    (site / "etc" / "motd.site").write_text("built by packwrap\n")
    (site / "install.site").write_text("#!/bin/sh\necho ran > /etc/install.site.ran\n")
    return site


def _install(tmp: Path, values: dict, *, docroot_extra=None) -> tuple[dict, str]:
    require_qemu()
    fx = fixture_dir()
    root = tmp / "docroot"
    root.mkdir()
    conf = render_install_conf(values, "7.6")
    (root / "install.conf").write_text(_pkr_in(conf))
    if values.get("disklabel_layout"):
        (root / "disklabel").write_text(render_disklabel(values["disklabel_layout"]))
    if values.get("site_set"):
        build_site_sets(
            _site(tmp),
            root / SITE_SUBDIR,
            release="7.6",
            hostname=values.get("hostname"),
            per_host=bool(values.get("site_set_per_host")),
        )
    if docroot_extra:
        docroot_extra(root, fx)
    disk = create_disk(tmp / "disk.raw", "64M")
    with (
        DocrootServer(root) as srv,
        QemuGuest(tmp / "vm", disk, kernel=True, append="pwfixture.cd=1", http_port=srv.port) as g,
    ):
        autoinstall(g)
        g.expect(r"CONGRATULATIONS!", timeout=120)
        assert g.wait_exit(60) == 0, g.tail()
        # An autoinstall always ends with `exec reboot` (-no-reboot turns it into an exit).
        assert g.shutdown_reasons() == ["guest-reset"], g.tail()
        console = g.text()
    return read_installed_tar(disk), console


def test_cd0_install_with_user_disklabel_and_site_set(tmp_path: Path):
    values = {
        "hostname": "web1",
        "root_password_hash": hash_password("root-secret"),
        "root_ssh_key": ROOT_KEY,
        "user_name": "alice",
        "user_password_hash": hash_password("alice-secret"),
        "user_ssh_key": KEY,
        "sets": "-game* -x*",
        "site_set": True,
        "disklabel_layout": [{"mount": "swap", "size": "16M"}, {"mount": "/", "size": "*"}],
        "timezone": "Europe/Berlin",
    }
    files, console = _install(tmp_path, values)
    assert files["etc/motd.site"] == b"built by packwrap\n"
    assert files["etc/install.site.ran"] == b"ran\n"
    assert files["home/alice/.ssh/authorized_keys"] == (KEY + "\n").encode()
    assert files["root/.ssh/authorized_keys"] == (ROOT_KEY + "\n").encode()
    passwd = files["etc/master.passwd"].decode()
    assert passwd.startswith("root:$2b$10$") and "\nalice:$2b$10$" in passwd
    record = files["etc/packwrap-fixture"].decode()
    assert f"template_url = http://{GUEST_HTTP_IP}:80/disklabel" in record
    assert "site76.tgz" in record and "game76.tgz" not in record
    assert "root-secret" not in console and "alice-secret" not in console
    # The site round was the last set location; the site set keeps installurl sane.
    assert files["etc/installurl"] == b"https://cdn.openbsd.org/pub/OpenBSD\n"


def test_http_mirror_and_per_host_site_set(tmp_path: Path):
    def mirror(root: Path, fx: Path) -> None:
        shutil.copytree(fx / "mirror" / "pub", root / "pub")

    values = {
        "hostname": "db1",
        "root_password_hash": "*************",
        "sets_location": "http",
        "sets_http_server": f"http://{GUEST_HTTP_IP}",
        "sets": "-x*",
        "site_set": True,
        "site_set_per_host": True,
    }
    files, _ = _install(tmp_path, values, docroot_extra=mirror)
    assert files["etc/motd.site"] == b"built by packwrap\n"
    record = files["etc/packwrap-fixture"].decode()
    assert "site76-db1.tgz" in record and "xbase76.tgz" not in record
    assert files["etc/master.passwd"].decode().startswith("root:*************:")


KERNEL_SOURCE = """
source "qemu" "kernel" {
  iso_url          = var.iso_url
  iso_checksum     = var.iso_checksum
  kernel           = "MEDIA/bsd.rd"
  initrd           = "MEDIA/bsd.rd.initrd"
  kernel_args      = "console=ttyS0,115200 quiet loglevel=1 panic=-1 pwfixture.cd=1"
  output_directory = "${var.output_directory}/kernel"
  vm_name          = "kernel.raw"
  format           = "raw"
  disk_size        = var.disk_size
  memory           = var.memory
  accelerator      = "tcg"
  hermetic_network = true
  http_directory   = "http"
  communicator     = "none"
  shutdown_timeout = "60s"
  boot_command     = ["A<enter>", "http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.conf<enter>"]
  boot_expect      = ["(A)utoinstall or (S)hell? ", "Response file location?"]
  boot_expect_timeout = "120s"
}

build {
  sources = ["source.qemu.kernel"]
}
"""


def test_packwrap_new_then_build_serves_the_site_set(tmp_path: Path):
    """The whole path: `packwrap new` renders install.conf, `packwrap build` runs
    StepHTTPServer + StepSiteSet, the fixture installs the site set."""
    from tests.e2e.conftest import Packwrap

    require_qemu()
    media = fixture_dir()
    pw = Packwrap(tmp_path)
    try:
        project = tmp_path / "img"
        new = pw.run(
            *("new", "openbsd-76", str(project), "--builder", "qemu"),
            *("--root-password", "s3cret-root"),
            *("--var", f"iso_url={media / 'install76.iso'}", "--var", "iso_checksum=none"),
            *("--var", "disk_size=2G", "--var", "memory=256", "--var", "site_set=true"),
            *("--var", "user_name=alice", "--var", f"user_ssh_key={KEY}"),
            cwd=tmp_path,
        )
        assert new.rc == 0, new.out
        (project / "kernel.pkr.hcl").write_text(KERNEL_SOURCE.replace("MEDIA", str(media)))
        site = _site(project)
        assert site == project / "site"
        lint = pw.run("lint", cwd=project)
        assert lint.rc == 0 and "0 warning(s)" in lint.out, lint.out
        build = pw.run("build", "-only=qemu.kernel", ".", cwd=project, timeout=120)
        assert build.rc == 0, build.out
        assert "Site set site76.tgz" in build.out
        files = read_installed_tar(project / "output" / "kernel" / "kernel.raw")
    finally:
        pw.cleanup()
    assert files["etc/motd.site"] == b"built by packwrap\n"
    assert files["etc/install.site.ran"] == b"ran\n"
    assert files["home/alice/.ssh/authorized_keys"] == (KEY + "\n").encode()
    assert "template_url = http://10.0.2.100:80/disklabel" in files["etc/packwrap-fixture"].decode()
    assert "s3cret-root" not in (project / "http" / "install.conf.pkr.in").read_text()
