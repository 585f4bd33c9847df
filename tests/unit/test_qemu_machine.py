"""Per-arch machine defaults, install media attachment and UEFI firmware on the command
line (pure functions: nothing starts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from packwrap_qemu import firmware, machine
from packwrap_qemu.driver import qemu_argv

from packwrap.errors import PackwrapError
from tests.qemu_spec_support import pairs, spec

ARM = "qemu-system-aarch64"


def test_arm64_machine_defaults():
    assert machine.machine_arg(ARM, None, "tcg") == "virt,acpi=off"
    assert machine.machine_arg(ARM, "virt", "hvf") == "virt,acpi=off,highmem=off"
    assert machine.machine_arg(ARM, "virt,acpi=on", "tcg") == "virt,acpi=on"  # the user's
    assert machine.cpu_arg(ARM, None, "tcg") == "cortex-a57"
    assert machine.cpu_arg(ARM, None, "hvf") == "host"
    assert not machine.has_boot_order(ARM, "virt,acpi=off")
    assert machine.machine_arg("qemu-system-x86_64", None, "tcg") == "pc"
    assert machine.cpu_arg("qemu-system-i386", None, "tcg") == "max"
    assert machine.has_boot_order("qemu-system-x86_64", "pc")


def test_arm64_media_are_virtio_and_no_boot_switch():
    iso = spec(binary=ARM, machine="virt,acpi=off", cpu="cortex-a57", iso_path=Path("/m/x.iso"),
               cdrom_interface="virtio-scsi", boot_order=False)  # fmt: skip
    argv = qemu_argv(iso)
    assert "file=/m/x.iso,if=none,id=m2,media=cdrom,readonly=on" in pairs(argv, "-drive")
    assert "scsi-cd,bus=scsi2.0,drive=m2,bootindex=0" in pairs(argv, "-device")
    assert "-boot" not in argv and "if=ide" not in " ".join(argv)
    img = spec(binary=ARM, iso_path=Path("/m/install76.img"), iso_kind="disk", boot_order=False)
    argv = qemu_argv(img)
    assert "file=/m/install76.img,if=none,id=m2,format=raw,snapshot=on" in pairs(argv, "-drive")
    assert "virtio-blk-pci,drive=m2,bootindex=0" in pairs(argv, "-device")
    assert "-boot" not in argv


def test_uefi_pflash_and_firmware_forms():
    argv = qemu_argv(spec(efi_code=Path("/fw/CODE.fd"), efi_vars=Path("/o/efivars.fd")))
    assert pairs(argv, "-drive")[:2] == [
        "file=/fw/CODE.fd,if=pflash,unit=0,format=raw,readonly=on",
        "file=/o/efivars.fd,if=pflash,unit=1,format=raw",
    ]
    assert "-bios" not in argv
    assert pairs(qemu_argv(spec(firmware="/fw/bios.bin")), "-bios") == ["/fw/bios.bin"]
    argv = qemu_argv(spec(firmware="/fw/bios.bin", use_pflash=True))
    assert "file=/fw/bios.bin,if=pflash,unit=0,format=raw,readonly=on" in pairs(argv, "-drive")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_media_kind_by_name_checked_by_content(tmp_path):
    iso = bytearray(0x9000)
    iso[0x8001:0x8006] = b"CD001"
    mbr = bytearray(4096)
    mbr[510:512] = b"\x55\xaa"
    assert machine.medium_kind(_write(tmp_path / "install76.iso", bytes(iso))) == "cdrom"
    assert machine.medium_kind(_write(tmp_path / "install76.img", bytes(mbr))) == "disk"
    hybrid = bytes(iso[:510]) + b"\x55\xaa" + bytes(iso[512:])
    assert machine.medium_kind(_write(tmp_path / "hybrid.iso", hybrid)) == "cdrom"
    assert machine.medium_kind(_write(tmp_path / "blank.iso", bytes(100))) == "cdrom"
    with pytest.raises(PackwrapError, match="disk image .* attached as a CD; name it .img"):
        machine.medium_kind(_write(tmp_path / "miniroot76.iso", bytes(mbr)))
    with pytest.raises(PackwrapError, match="ISO 9660 CD image attached as a disk"):
        machine.medium_kind(_write(tmp_path / "cd.img", bytes(iso)))


def test_firmware_discovery_pairs_code_and_vars(tmp_path):
    (tmp_path / "AAVMF").mkdir()
    with pytest.raises(PackwrapError, match="no UEFI firmware for aarch64 .* qemu-efi-aarch64"):
        firmware.find_firmware(ARM, [tmp_path])
    _write(tmp_path / "AAVMF" / "AAVMF_CODE.fd", b"c")
    with pytest.raises(PackwrapError):  # a code file without its vars is no pair
        firmware.find_firmware(ARM, [tmp_path])
    _write(tmp_path / "AAVMF" / "AAVMF_VARS.fd", b"v")
    code, vars_ = firmware.find_firmware(ARM, [tmp_path])
    assert (code.name, vars_.name) == ("AAVMF_CODE.fd", "AAVMF_VARS.fd")
    brew = tmp_path / "brew"
    (brew / "qemu").mkdir(parents=True)
    _write(brew / "qemu" / "edk2-x86_64-code.fd", b"c")
    _write(brew / "qemu" / "edk2-i386-vars.fd", b"v")
    code, _ = firmware.find_firmware("qemu-system-x86_64", [tmp_path, brew])
    assert code == brew / "qemu" / "edk2-x86_64-code.fd"


# --------------------------------------------------------------------------- config and step

BASE = {"iso_url": "install76.iso", "iso_checksum": "none", "communicator": "none"}


def prepare(**values):
    from packwrap_qemu.builder import QemuBuilder

    from packwrap.config.schema import SourceBody

    body = SourceBody({**BASE, **values}, file="t.pkr.hcl", line=3)
    return QemuBuilder.schema.prepare(body)


def test_efi_boot_and_firmware_are_exclusive():
    _, problems, _ = prepare(efi_boot=True, firmware="bios.bin")
    assert any("firmware (-bios) and efi_boot are mutually exclusive" in str(p) for p in problems)
    _, problems, _ = prepare(efi_firmware_code="CODE.fd", firmware="bios.bin")
    assert len(problems) == 1
    _, problems, _ = prepare(use_pflash=True)
    assert any("use_pflash needs firmware" in str(p) for p in problems)
    config, problems, _ = prepare(efi_firmware_vars="VARS.fd")
    assert problems == [] and firmware.efi_enabled(config)  # Packer: a path implies efi_boot
    config, _, _ = prepare(qemu_binary=ARM)
    assert firmware.efi_enabled(config)  # arm64 boots OpenBSD only through UEFI
    config, _, _ = prepare()
    assert not firmware.efi_enabled(config)


def _efi_state(tmp_path, **values):
    from packwrap.build.state import BuildOptions, State
    from packwrap.build.ui import PlainUi

    config, problems, _ = prepare(**values)
    assert problems == []
    state = State("qemu.t", "qemu", "t", config, PlainUi("qemu.t"), options=BuildOptions())
    out = tmp_path / "out"
    out.mkdir()
    state.data["output_dir"] = out
    return state


def test_each_build_gets_its_own_vars_copy(tmp_path):
    code = _write(tmp_path / "CODE.fd", b"code")
    template = _write(tmp_path / "VARS.fd", b"vars")
    state = _efi_state(tmp_path, efi_firmware_code=str(code), efi_firmware_vars=str(template))
    step = firmware.StepPrepareEfiVars()
    step.run(state)
    copy = tmp_path / "out" / "efivars.fd"
    assert state.data["efi_vars"] == copy and copy.read_bytes() == b"vars"
    assert state.data["efi_code"] == code
    step.cleanup(state)
    assert copy.exists()  # kept unless efi_drop_efivars


def test_efi_drop_efivars_leaves_it_out_of_a_finished_build(tmp_path):
    code = _write(tmp_path / "CODE.fd", b"code")
    template = _write(tmp_path / "VARS.fd", b"vars")
    state = _efi_state(tmp_path, efi_firmware_code=str(code), efi_firmware_vars=str(template),
                       efi_drop_efivars=True)  # fmt: skip
    step = firmware.StepPrepareEfiVars()
    step.run(state)
    step.cleanup(state)
    assert not (tmp_path / "out" / "efivars.fd").exists()
    assert template.read_bytes() == b"vars"


def test_bad_firmware_paths_are_one_line_errors(tmp_path):
    code = _write(tmp_path / "CODE.fd", b"code")
    state = _efi_state(tmp_path, efi_firmware_code=str(code), efi_firmware_vars="/nope/VARS.fd")
    with pytest.raises(PackwrapError, match="efi_firmware_vars /nope/VARS.fd: no such file"):
        firmware.StepPrepareEfiVars().run(state)
    state = _efi_state(tmp_path / "out", firmware="/nope/bios.bin")
    with pytest.raises(PackwrapError, match="firmware /nope/bios.bin: no such file"):
        firmware.StepPrepareEfiVars().run(state)
    unreadable = tmp_path / "dir.fd"
    unreadable.mkdir()  # exists, but is no file that can be copied
    state = _efi_state(tmp_path / "out" / "out", efi_firmware_code=str(code),
                       efi_firmware_vars=str(unreadable))  # fmt: skip
    with pytest.raises(PackwrapError, match="efi_firmware_vars .*dir.fd: no such file"):
        firmware.StepPrepareEfiVars().run(state)


def test_a_vars_file_that_cannot_be_copied(tmp_path):
    code = _write(tmp_path / "CODE.fd", b"code")
    template = _write(tmp_path / "VARS.fd", b"vars")
    state = _efi_state(tmp_path, efi_firmware_code=str(code), efi_firmware_vars=str(template))
    (tmp_path / "out" / "efivars.fd").mkdir()  # the copy's place is taken
    with pytest.raises(PackwrapError, match=r"VARS.fd: cannot copy it to .*efivars.fd: Is a dir"):
        firmware.StepPrepareEfiVars().run(state)
