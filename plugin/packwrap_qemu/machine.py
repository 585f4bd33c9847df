"""Per-arch machine defaults that boot OpenBSD, and how each install medium is attached.

x86 (`qemu-system-x86_64`, `-i386`): Packer's `pc` machine, the ISO as an IDE CD booted
once with `-boot once=d`. arm64 (`qemu-system-aarch64`): the `virt` machine with
`acpi=off` (OpenBSD 7.x hangs at ACPI attach there; under HVF also `highmem=off`), a CPU
model OpenBSD supports under TCG, UEFI firmware, no IDE (a CD is a virtio-scsi `cd0`, an
`.img` a second virtio disk) and no `-boot` (virt has no boot-order function; QEMU refuses
it). An explicit machine_type, cpu_model or cdrom_interface always wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from packwrap.sdk import PackwrapError
from packwrap_qemu.accel import HARDWARE, guest_arch


@dataclass(frozen=True)
class Profile:
    machine: str
    tcg_cpu: str  # the CPU model without a hardware accelerator ("host" with one)
    cdrom_interface: str
    boot_order: bool  # the machine takes -boot (x86 pc/q35: yes; arm virt: no)
    needs_efi: bool  # only UEFI boots OpenBSD here
    tpm_device: str = "tpm-tis"  # Packer's default; arm's virt needs the sysbus variant


_X86 = Profile(machine="pc", tcg_cpu="max", cdrom_interface="ide", boot_order=True,
               needs_efi=False)  # fmt: skip
_ARM64 = Profile(machine="virt", tcg_cpu="cortex-a57", cdrom_interface="virtio-scsi",
                 boot_order=False, needs_efi=True, tpm_device="tpm-tis-device")  # fmt: skip
_PROFILES = {"x86_64": _X86, "i386": _X86, "aarch64": _ARM64}


def profile(binary: str) -> Profile:
    """The defaults for the guest arch of `binary` (x86's for names it does not know)."""
    return _PROFILES.get(guest_arch(binary) or "", _X86)


def machine_arg(binary: str, machine_type: str | None, accel: str) -> str:
    """The -machine value: the arch's default type, plus virt's options OpenBSD needs
    unless the value sets them."""
    value = machine_type or profile(binary).machine
    name = value.split(",", 1)[0]
    if guest_arch(binary) == "aarch64" and name.startswith("virt"):
        if "acpi=" not in value:
            value += ",acpi=off"
        if accel == "hvf" and "highmem=" not in value:
            value += ",highmem=off"
    return value


def cpu_arg(binary: str, cpu_model: str | None, accel: str) -> str:
    return cpu_model or ("host" if accel in HARDWARE else profile(binary).tcg_cpu)


def has_boot_order(binary: str, machine: str) -> bool:
    """False where QEMU has no function to set the boot order (it refuses -boot there)."""
    return profile(binary).boot_order and not machine.startswith("virt")


# --------------------------------------------------------------------------- media kinds

_ISO9660_MAGIC = (0x8001, b"CD001")  # primary volume descriptor, sector 16


def sniff_medium(path: Path) -> str | None:
    """'cdrom' (ISO 9660), 'disk' (MBR or GPT), 'hybrid' (both), or None (cannot tell)."""
    try:
        with open(path, "rb") as f:
            head = f.read(0x8010)
    except OSError:
        return None
    offset, magic = _ISO9660_MAGIC
    iso = head[offset : offset + len(magic)] == magic
    disk = head[510:512] == b"\x55\xaa" or head[512:520] == b"EFI PART"
    if iso and disk:
        return "hybrid"
    return "cdrom" if iso else "disk" if disk else None


def medium_kind(path: Path, *, option: str = "iso_url") -> str:
    """How the medium is attached, 'cdrom' or 'disk', from its name (OpenBSD ships
    installXY.iso for CDs and installXY.img / minirootXY.img for disks), checked against
    its content where that tells."""
    kind = "disk" if path.suffix.lower() == ".img" else "cdrom"
    found = sniff_medium(path)
    if found in (None, "hybrid", kind):
        return kind
    if kind == "cdrom":
        raise PackwrapError(
            f"{option} {path}: a disk image (MBR/GPT, no ISO 9660 volume) attached as a CD; "
            "name it .img to attach it as a disk"
        )
    raise PackwrapError(
        f"{option} {path}: an ISO 9660 CD image attached as a disk (.img); name it .iso"
    )
