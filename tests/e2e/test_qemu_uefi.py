"""amd64 with `efi_boot = true`: the build boots the fixture through OVMF (the host's
firmware, found by packwrap) from pflash, with the build's own efivars.fd."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_qemu_build import add_kernel_source, build, installed, new_project

pytestmark = pytest.mark.e2e


def _ovmf() -> None:
    from packwrap_qemu.firmware import find_firmware

    from packwrap.errors import PackwrapError

    try:
        find_firmware("qemu-system-x86_64")
    except PackwrapError as exc:
        pytest.skip(str(exc))


def test_amd64_efi_boot_installs_through_ovmf(packwrap, tmp_path, fixture_media):
    _ovmf()
    project = new_project(packwrap, tmp_path, fixture_media, "hostname=uefi")
    add_kernel_source(project, fixture_media)
    source = project / "kernel.pkr.hcl"
    text = source.read_text().replace("  http_directory", "  efi_boot = true\n  http_directory", 1)
    source.write_text(text)
    result = build(packwrap, project, "qemu.kernel")
    assert result.rc == 0, result.out
    assert "if=pflash,unit=0,format=raw,readonly=on" in result.out
    out = project / "output" / "kernel"
    vars_copy = out / "efivars.fd"
    assert f"file={vars_copy.resolve()},if=pflash,unit=1,format=raw" in result.out
    console = next(project.rglob("*.console.log")).read_text(errors="replace")
    assert "SeaBIOS" not in console
    # install.md 1.62: on an EFI boot the disk question defaults to gpt (the project
    # leaves it to the default) and G asks no "may not boot" question
    assert "Use (W)hole disk MBR, whole disk (G)PT or (E)dit? [gpt] gpt" in console
    assert "An EFI/GPT disk may not boot" not in console
    tree = installed(out / "kernel.raw", "raw")
    assert tree["etc/myname"].startswith(b"uefi")
    assert "partition_tables = sd0:GPT" in tree["etc/packwrap-fixture"].decode()
    files = json.loads((project / "kernel-manifest.json").read_text())["builds"][-1]["files"]
    assert sorted(Path(f["name"]).name for f in files) == ["efivars.fd", "kernel.raw"]
