"""disk_partitioning: "" leaves the disk question to the installer's default for the
machine, "whole-mbr" answers `whole`, "whole-gpt" `gpt`; a UEFI build refuses "whole-mbr"
where the installer's whole-disk MBR has no EFI System partition (amd64 install.md 1.62
md_prep_fdisk: fdisk -iy), and an arch without a GPT choice refuses "whole-gpt"."""

from __future__ import annotations

import re
import types
from dataclasses import replace
from pathlib import Path

import pytest

from packwrap.autoinstall.lint import lint
from packwrap.autoinstall.matching import parse
from packwrap.autoinstall.release import known_arches, known_releases, load_release
from packwrap.autoinstall.render import answers_context, render_install_conf
from packwrap.autoinstall.simulate import simulate
from packwrap.cli import main
from packwrap.config.schema import SourceBody
from packwrap.errors import PackwrapError
from packwrap.template.pkrvars import update_pkrvars

VALUES = {"hostname": "h", "root_password_hash": "*************", "timezone": "UTC"}
AMD64_Q = "Use (W)hole disk MBR, whole disk (G)PT or (E)dit"
PROCEED = "An EFI/GPT disk may not boot. Proceed = yes"
ENCRYPTED = {"encrypt_passphrase": "correct horse"}


def disk_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if "disk" in ln and "Encrypt" not in ln]


def asked_disk(text: str, *, efi: bool, arch: str = "amd64", encrypted: bool = False):
    """(answer, from a line?) for each time the simulated installer asked the question."""
    values = {**VALUES, **(ENCRYPTED if encrypted else {})}
    ctx = replace(answers_context(values, "7.6", arch), efi=efi)
    result = simulate(load_release("7.6", arch), parse(text), ctx)
    assert not result.aborted, result.findings
    asked = [(a, ln is not None) for pid, _, a, ln, _ in result.asked if pid == "disk_partitioning"]
    return asked, result.findings


@pytest.mark.parametrize("encrypted", [False, True])
@pytest.mark.parametrize("efi", [False, True])
def test_the_default_writes_no_answer_and_the_installer_picks_for_the_machine(efi, encrypted):
    values = {**VALUES, **(ENCRYPTED if encrypted else {})}
    text = render_install_conf(values, "7.6", efi=efi)
    assert disk_lines(text) == []
    asked, findings = asked_disk(text, efi=efi, encrypted=encrypted)
    default = "gpt" if efi else "whole"  # install.md 1.62: gpt when MDEFI=y
    assert asked == [(default, False)] * (2 if encrypted else 1)
    assert findings == []


@pytest.mark.parametrize("encrypted", [False, True])
def test_whole_mbr_answers_whole_for_each_disk_question_on_a_bios_machine(encrypted):
    values = {**VALUES, "disk_partitioning": "whole-mbr", **(ENCRYPTED if encrypted else {})}
    text = render_install_conf(values, "7.6")
    count = 2 if encrypted else 1  # the crypto chunk, then the softraid volume
    assert disk_lines(text) == [f"{AMD64_Q} = whole"] * count
    asked, findings = asked_disk(text, efi=False, encrypted=encrypted)
    assert asked == [("whole", True)] * count and findings == []
    assert lint(text, "7.6") == []


@pytest.mark.parametrize("encrypted", [False, True])
def test_whole_mbr_is_refused_for_a_uefi_build_in_one_line(encrypted):
    values = {**VALUES, "disk_partitioning": "whole-mbr", **(ENCRYPTED if encrypted else {})}
    with pytest.raises(PackwrapError) as err:
        render_install_conf(values, "7.6", efi=True)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith('variable disk_partitioning: "whole-mbr": ')
    assert "without an EFI System partition (install.md md_prep_fdisk: fdisk -iy)" in message
    assert message.endswith('UEFI cannot boot it: use "whole-gpt" or ""')


@pytest.mark.parametrize("encrypted", [False, True])
@pytest.mark.parametrize("efi", [False, True])
def test_whole_gpt_answers_gpt_and_proceed_for_each_disk_question(efi, encrypted):
    values = {**VALUES, "disk_partitioning": "whole-gpt", **(ENCRYPTED if encrypted else {})}
    text = render_install_conf(values, "7.6", efi=efi)
    count = 2 if encrypted else 1
    assert disk_lines(text) == [f"{AMD64_Q} = gpt", PROCEED] * count
    asked, findings = asked_disk(text, efi=efi, encrypted=encrypted)
    assert asked == [("gpt", True)] * count and findings == []


def test_arm64_whole_mbr_answers_whole_even_through_uefi():
    """arm64's `whole` writes an MBR with an msdos boot partition for the EFI loader
    (arm64 install.md md_prep_fdisk): bootable, so not refused; no GPT choice at all."""
    values = {**VALUES, "disk_partitioning": "whole-mbr"}
    text = render_install_conf(values, "7.6", arch="arm64", efi=True)
    assert disk_lines(text) == ["Use (W)hole disk or (E)dit the MBR = whole"]
    assert asked_disk(text, efi=True, arch="arm64") == ([("whole", True)], [])
    assert disk_lines(render_install_conf(VALUES, "7.6", arch="arm64", efi=True)) == []
    with pytest.raises(PackwrapError, match=r'"whole-gpt": the OpenBSD/arm64 installer asks'):
        render_install_conf({**VALUES, "disk_partitioning": "whole-gpt"}, "7.6", arch="arm64")


def test_i386_whole_mbr_answers_whole():
    text = render_install_conf({**VALUES, "disk_partitioning": "whole-mbr"}, "7.6", arch="i386")
    assert disk_lines(text) == ["Use (W)hole disk or (E)dit the MBR = whole"]


def test_an_unknown_value_names_the_choices():
    with pytest.raises(PackwrapError, match='partitioning: .mbr. is not one of "", whole-mbr'):
        render_install_conf({**VALUES, "disk_partitioning": "mbr"}, "7.6")


def test_lint_flags_a_whole_line_only_where_uefi_cannot_boot_the_disk():
    text = render_install_conf(VALUES, "7.6") + f"{AMD64_Q} = whole\n"
    line = text.count("\n")
    bios = answers_context(VALUES)
    assert lint(text, "7.6", answers_context=bios) == []
    findings = lint(text, "7.6", answers_context=replace(bios, efi=True))
    assert [(f.line, f.severity) for f in findings] == [(line, "error")]
    assert "UEFI cannot boot it: answer gpt or leave it out" in findings[0].message
    arm = render_install_conf(VALUES, "7.6", arch="arm64") + "Use (W)hole disk = whole\n"
    arm_ctx = replace(answers_context(VALUES, "7.6", "arm64"), efi=True)
    assert lint(arm, "7.6", answers_context=arm_ctx, arch="arm64") == []


# -- the machine comes from the builders --------------------------------------------------


def _build(source_type: str, **values) -> types.SimpleNamespace:
    source = types.SimpleNamespace(type=source_type, body=SourceBody(values=values))
    return types.SimpleNamespace(source=source)


def test_the_qemu_builder_says_when_it_boots_through_uefi():
    from packwrap.plugins import boots_efi

    iso = {"iso_url": "x.iso", "iso_checksum": "none"}
    assert not boots_efi([_build("qemu", **iso)])
    assert boots_efi([_build("qemu", **iso, efi_boot=True)])
    assert boots_efi([_build("qemu", **iso, efi_firmware_code="CODE.fd")])  # Packer: implies it
    assert boots_efi([_build("qemu", **iso, qemu_binary="qemu-system-aarch64")])
    assert not boots_efi([_build("openbsd-vmm", iso_url="x.iso"), _build("null")])
    assert boots_efi([_build("openbsd-vmm", iso_url="x.iso"), _build("qemu", **iso, efi_boot=True)])


def test_a_builder_that_fails_to_load_is_left_to_the_build_to_report(monkeypatch):
    from packwrap import plugins

    def broken(type_name: str):
        raise ImportError("No module named 'packwrap_fake.builder'")

    monkeypatch.setattr(plugins, "builder_for", broken)
    assert not plugins.boots_efi([_build("qemu", efi_boot=True)])


# -- the commands -------------------------------------------------------------------------


@pytest.fixture
def project(qemu_project: Path) -> Path:
    return qemu_project


def _efi_boot(project: Path) -> None:
    """efi_boot = true in the qemu source (as tests/e2e/test_qemu_uefi.py writes it)."""
    source = project / "openbsd-76.pkr.hcl"
    text = source.read_text()
    qemu = text.index('source "qemu"')
    head, tail = text[:qemu], text[qemu:]
    assert "\n  http_directory" in tail
    tail = tail.replace("\n  http_directory", "\n  efi_boot = true\n  http_directory", 1)
    source.write_text(head + tail)


def test_new_scaffolds_the_installer_default(project: Path):
    pkrvars = (project / "openbsd-76.auto.pkrvars.hcl").read_text()
    assert re.search(r'^disk_partitioning\s*=\s*""$', pkrvars, re.M)
    template = (project / "openbsd-76.pkr.hcl").read_text()
    block = template[template.index('variable "disk_partitioning"') :].split("}", 1)[0]
    assert re.search(r'default\s*=\s*""', block) and "installer's default" in block
    assert "(G)PT" not in (project / "http" / "install.conf.pkr.in").read_text()


def test_new_with_whole_mbr_answers_whole(tmp_path: Path):
    target = tmp_path / "mbr"
    argv = ["new", "openbsd-76", str(target), "--builder", "qemu", "--no-root-password"]
    assert main([*argv, "--var", "disk_partitioning=whole-mbr"]) == 0
    conf = (target / "http" / "install.conf.pkr.in").read_text()
    assert f"{AMD64_Q} = whole" in conf


def test_validate_lint_and_build_refuse_whole_mbr_on_uefi(project: Path, monkeypatch, capsys):
    _efi_boot(project)
    monkeypatch.chdir(project)
    assert main(["validate"]) == 0  # the installer's default: GPT through UEFI
    capsys.readouterr()
    update_pkrvars(project / "openbsd-76.auto.pkrvars.hcl", {"disk_partitioning": "whole-mbr"})
    for argv, rc in ((["validate"], 1), (["lint"], 1), (["build"], 1), (["regenerate"], 1)):
        assert main(argv) == rc, argv
        err = capsys.readouterr().err
        refusal = [ln for ln in err.splitlines() if "disk_partitioning" in ln]
        assert len(refusal) == 1, (argv, err)
        assert '"whole-mbr"' in refusal[0] and "UEFI cannot boot it" in refusal[0]
    assert not (project / "output").exists()
    assert "(G)PT" not in (project / "http" / "install.conf.pkr.in").read_text()


def test_whole_mbr_without_uefi_validates_and_is_served_as_whole(project: Path, capsys):
    update_pkrvars(project / "openbsd-76.auto.pkrvars.hcl", {"disk_partitioning": "whole-mbr"})
    assert main(["validate", str(project)]) == 0
    assert main(["regenerate", str(project)]) == 0
    assert f"{AMD64_Q} = whole" in (project / "http" / "install.conf.pkr.in").read_text()


def test_new_refuses_an_unknown_value_naming_the_choices(tmp_path: Path, capsys):
    target = tmp_path / "bad"
    argv = ["new", "openbsd-76", str(target), "--no-root-password"]
    assert main([*argv, "--var", "disk_partitioning=mbr"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "disk_partitioning: 'mbr' is not one of \"\", whole-mbr, whole-gpt" in err
    assert not target.exists()


@pytest.mark.parametrize("release", known_releases())
def test_every_release_knows_which_whole_disk_uefi_boots(release):
    # amd64 (and i386): fdisk -iy, no EFI System partition; arm64: an msdos boot partition
    bootable = {arch: load_release(release, arch).whole_disk_efi_sys for arch in known_arches()}
    assert bootable == {"amd64": False, "arm64": True, "i386": False}


def test_only_the_selected_builds_firmware_counts(tmp_path: Path, capsys):
    target = tmp_path / "both"
    assert main(["new", "openbsd-76", str(target), "--no-root-password"]) == 0  # vmm + qemu
    _efi_boot(target)
    update_pkrvars(target / "openbsd-76.auto.pkrvars.hcl", {"disk_partitioning": "whole-mbr"})
    assert main(["validate", "-only=openbsd-vmm.*", str(target)]) == 0  # vmd boots by BIOS
    capsys.readouterr()
    assert main(["validate", str(target)]) == 1
    assert "UEFI cannot boot it" in capsys.readouterr().err
