"""The disk_partitioning variable: which answer it writes, and when the machine refuses it.

The one place for the rule; the renderer (the variable) and the installer-flow simulation
(a response file's `whole` line) both ask it. Facts, amd64 install.md 1.62 md_prep_fdisk
(blueprints/openbsd/releases/7.6.toml's header): `whole` runs `fdisk -iy`, an MBR without
an EFI System partition, so UEFI cannot boot the disk; `gpt` runs `fdisk -gy -b 532480`.
arm64's `whole` writes an MBR with an msdos boot partition the EFI loader goes to
(blueprints/openbsd/releases/arch/arm64.toml), and its question has no GPT choice.
"""

from __future__ import annotations

from packwrap.autoinstall.release import Release

WHOLE_MBR = "whole-mbr"
WHOLE_GPT = "whole-gpt"

#: The variable's value -> the answer to the disk question; none for "", the installer's
#: default for the machine (amd64: GPT on a UEFI boot, else MBR).
ANSWERS = {WHOLE_MBR: "whole", WHOLE_GPT: "gpt"}


def mbr_unbootable(rel: Release, *, efi: bool) -> str | None:
    """Why `whole` gives a disk this UEFI machine cannot boot, or None."""
    if not efi or rel.whole_disk_efi_sys:
        return None
    return (
        f"on a UEFI boot the OpenBSD/{rel.arch} installer writes an MBR without an EFI "
        "System partition (install.md md_prep_fdisk: fdisk -iy); UEFI cannot boot it"
    )


def partitioning_problem(value: str, rel: Release, *, efi: bool) -> str | None:
    """Why disk_partitioning = `value` cannot be answered on this arch and machine, or None."""
    question = rel["disk_partitioning"]
    has_gpt = "gpt" in question.choices
    if value == WHOLE_GPT and not has_gpt:
        return (
            f"the OpenBSD/{rel.arch} installer asks {question.text!r}, "
            "which has no whole-disk GPT choice"
        )
    why = mbr_unbootable(rel, efi=efi) if value == WHOLE_MBR else None
    if why:
        fix = f'use "{WHOLE_GPT}" or ""' if has_gpt else "it has no GPT choice: boot by BIOS"
        return f"{why}: {fix}"
    return None
