"""A layered build end to end (issue 15): packer-plugin-qemu's disk_image +
use_backing_file on an earlier image, with a floppy, a cd_content CD, a second disk and a
vTPM (swtpm),
provisioned over SSH in the same run, on real QEMU and the fixture (tests/corpus/layered
is the published shape of it).

The base image is an "installed system" as the fixture writes one (a tar at the start of
the disk, scripts/fixture/README.md), made here so the test needs no install boot.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
from pathlib import Path

import pytest

from packwrap.communicator.keys import make_temporary_key_pair
from tests.e2e.conftest import Packwrap, pid_alive
from tests.fixture_support import BASE_APPEND, read_installed_tar

pytestmark = pytest.mark.e2e

TEMPLATE = """
source "qemu" "layer" {{
  disk_image           = true
  use_backing_file     = true
  iso_url              = "{base}"
  iso_checksum         = "none"
  format               = "qcow2"
  disk_size            = "16M"
  skip_resize_disk     = true
  disk_additional_size = ["8M"]
  kernel               = "{media}/bsd.rd"
  initrd               = "{media}/bsd.rd.initrd"
  kernel_args          = "{append} pwfixture.mode=installed"
  boot_wait            = "1s"
  accelerator          = "tcg"
  memory               = 256
  hermetic_network     = true
  floppy_content       = {{ "site.txt" = "floppy" }}
  floppy_label         = "SITE"
  cd_content           = {{ "meta-data" = "instance-id: layer" }}
  vtpm                 = true
  communicator         = "ssh"
  ssh_username         = "root"
  ssh_private_key_file = "{key}"
  ssh_timeout          = "60s"
  shutdown_command     = "shutdown -p now"
  shutdown_timeout     = "30s"
  output_directory     = "output-layer"
  vm_name              = "layer.qcow2"
}}

build {{
  sources = ["source.qemu.layer"]
  provisioner "shell" {{
    inline = ["cat /proc/partitions", "ls /dev", "echo layered > /etc/motd"]
  }}
}}
"""


def installed_base(path: Path, authorized_key: str) -> Path:
    """A qcow2 whose raw content is the fixture's installed-system tar, with the footer in
    the last sector that tells the guest how much to read (so the layer keeps the base's
    size: skip_resize_disk)."""
    files = {
        "etc/myname": b"base.example.org\n",
        "etc/master.passwd": b"root:*************:0:0:daemon:0:0:Charlie &:/root:/bin/ksh\n",
        "etc/group": b"wheel:*:0:root\n",
        "etc/motd": b"base\n",
        "root/.ssh/authorized_keys": authorized_key.encode() + b"\n",
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for directory, mode in (("etc", 0o755), ("root", 0o700), ("root/.ssh", 0o700)):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600 if "ssh" in name else 0o644
            tar.addfile(info, io.BytesIO(data))
    mib = 1 << 20
    tar_mb = -(-len(buf.getvalue()) // mib)
    raw = bytearray(16 * mib)
    raw[: len(buf.getvalue())] = buf.getvalue()
    footer = f"PWFIXTURE-TAR {tar_mb}\n".encode()
    raw[-512 : -512 + len(footer)] = footer
    raw_path = path.with_suffix(".raw")
    raw_path.write_bytes(bytes(raw))
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw_path), str(path)], check=True)
    raw_path.unlink()
    return path


def test_layered_build_on_a_base_image(tmp_path, fixture_media):
    if not shutil.which("swtpm"):
        pytest.skip("needs swtpm (scripts/setup installs it)")
    pw = Packwrap(tmp_path)
    swtpm: list[int] = []
    try:
        key = make_temporary_key_pair(tmp_path / "key", comment="layer-test")
        base = installed_base(tmp_path / "base.qcow2", key.public_key)
        project = tmp_path / "layer"
        project.mkdir()
        (project / "layer.pkr.hcl").write_text(
            TEMPLATE.format(
                base=base, media=fixture_media, append=BASE_APPEND, key=key.private_key_file
            )  # fmt: skip
        )
        result = pw.run("build", ".", cwd=project, timeout=120)
        swtpm += [int(p) for p in re.findall(r"swtpm pid (\d+)", result.out)]
        assert result.rc == 0, result.out
        assert result.out.count("Starting QEMU") == 1  # Packer's disk_image: one run
        assert "Creating floppy disk (SITE)" in result.out
        command = next(ln for ln in result.out.splitlines() if "Command: " in ln)
        assert " -fda " in command and "layer.qcow2-1" in command
        assert (
            "-tpmdev emulator,id=tpm0,chardev=vtpm" in command and "tpm-tis,tpmdev=tpm0" in command
        )
        assert "vdb" in result.out  # the guest sees the second disk
        assert re.search(r"\btpmrm0\b", result.out)  # and a TPM 2.0 (its resource manager)
        layer = project / "output-layer" / "layer.qcow2"
        info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(layer)],
                                         capture_output=True, check=True).stdout)  # fmt: skip
        assert info["backing-filename"] == str(base)  # a layer, not a copy
        assert info["virtual-size"] == 16 << 20  # skip_resize_disk: the base's size
        assert read_installed_tar(layer, "qcow2")["etc/motd"] == b"layered\n"
        assert read_installed_tar(base, "qcow2")["etc/motd"] == b"base\n"  # base untouched
        assert (project / "output-layer" / "layer.qcow2-1").is_file()
        assert not [pid for pid in pw.qemu_pids if pid_alive(pid)]
        assert len(swtpm) == 1 and not pid_alive(swtpm[0])  # the build ended its swtpm
    finally:
        pw.cleanup()
        for pid in swtpm:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
