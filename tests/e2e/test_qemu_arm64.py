"""arm64 end to end: `packwrap new --arch arm64` builds on qemu-system-aarch64 (TCG)
through EDK2 (the host's AAVMF) from the arm64 fixture's install76.img, attached as a
second virtio disk, and the installer asks arm64's question set."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import pid_alive

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def arm64_media() -> Path:
    for tool in ("qemu-system-aarch64", "qemu-img", "grub-mkstandalone", "mformat", "sfdisk"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    from packwrap_qemu.firmware import find_firmware

    from packwrap.errors import PackwrapError

    try:
        find_firmware("qemu-system-aarch64")
    except PackwrapError as exc:
        pytest.skip(str(exc))
    from tests.fixture_support import arm64_fixture_dir

    return Path(arm64_fixture_dir())


def test_arm64_install_through_uefi(packwrap, tmp_path, arm64_media):
    project = tmp_path / "a64"
    args = [
        "new", "openbsd-76", str(project), "--arch", "arm64", "--builder", "qemu",
        "--no-root-password", "--var", f"iso_url={arm64_media / 'install76.img'}",
        "--var", "iso_checksum=none", "--var", "hermetic_network=true",
        "--var", "disk_size=2G", "--var", "memory=512", "--var", "qemu_accelerator=auto",
        "--var", "shutdown_timeout=300s", "--var", "boot_expect_timeout=300s",
        "--var", "hostname=arm",
    ]  # fmt: skip
    assert packwrap.run(*args, cwd=tmp_path).rc == 0
    result = packwrap.run("build", ".", cwd=project, timeout=600)
    assert result.rc == 0, result.out
    # auto: no KVM claim for a foreign arch; the per-arch machine and media.
    assert "accelerator auto: tcg (the guest arch aarch64 is not the host's x86_64)" in result.out
    assert "-machine virt,acpi=off" in result.out and "-cpu cortex-a57" in result.out
    assert "virtio-blk-pci,drive=m2,bootindex=0" in result.out and "-boot" not in result.out
    console = next(project.rglob("*.console.log")).read_text(errors="replace")
    assert "UEFI firmware" in console and ">> OpenBSD/arm64 BOOTAA64" in console
    assert "Use (W)hole disk or (E)dit the MBR? [whole] whole" in console
    assert "Change the default console to com0?" not in console
    from tests.fixture_support import read_installed_tar

    tree = read_installed_tar(project / "output/qemu/openbsd-76.qcow2", "qcow2")
    assert tree["etc/myname"].startswith(b"arm")
    assert b"Pathname to the sets = 7.6/arm64" in tree["etc/packwrap-fixture"]
    assert (project / "output/qemu/efivars.fd").is_file()
    assert not [pid for pid in packwrap.qemu_pids if pid_alive(pid)]
