"""UEFI firmware with Packer's semantics: `efi_boot`, `efi_firmware_code`/`_vars`,
`efi_drop_efivars`; found on the host when the paths are not set.

The code file goes in as a read-only pflash drive, a per-build copy of the vars file
(`<output_directory>/efivars.fd`, Packer's name) as a writable one, so the install and the
provisioning boot share the boot entries OpenBSD's installer writes, and the user's vars
template is never written. `firmware` stays `-bios` (or read-only pflash with
`use_pflash`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.sdk import PackwrapError, Step
from packwrap_qemu.accel import guest_arch
from packwrap_qemu.config import config_of
from packwrap_qemu.machine import profile

if TYPE_CHECKING:
    from packwrap.sdk import Config, State

VARS_NAME = "efivars.fd"

#: (code, vars) pairs per guest arch, most usual first, relative to a share directory:
#: Debian/Ubuntu's ovmf and qemu-efi-aarch64 (AAVMF), Fedora's edk2, QEMU's own
#: (also Homebrew's) edk2-*-code.fd. A pair is used only when both files exist.
_PAIRS = {
    "x86_64": [
        ("OVMF/OVMF_CODE_4M.fd", "OVMF/OVMF_VARS_4M.fd"),
        ("OVMF/OVMF_CODE.fd", "OVMF/OVMF_VARS.fd"),
        ("edk2/ovmf/OVMF_CODE.fd", "edk2/ovmf/OVMF_VARS.fd"),
        ("qemu/edk2-x86_64-code.fd", "qemu/edk2-i386-vars.fd"),
    ],
    "i386": [
        ("OVMF/OVMF32_CODE_4M.secboot.fd", "OVMF/OVMF32_VARS_4M.fd"),
        ("qemu/edk2-i386-code.fd", "qemu/edk2-i386-vars.fd"),
    ],
    "aarch64": [
        ("AAVMF/AAVMF_CODE.fd", "AAVMF/AAVMF_VARS.fd"),
        ("edk2/aarch64/QEMU_EFI-pflash.raw", "edk2/aarch64/vars-template-pflash.raw"),
        ("qemu/edk2-aarch64-code.fd", "qemu/edk2-arm-vars.fd"),
    ],
}
_SHARE_DIRS = ("/usr/share", "/usr/local/share", "/opt/homebrew/share", "/opt/local/share")
_PACKAGES = {"x86_64": "ovmf", "i386": "ovmf-ia32", "aarch64": "qemu-efi-aarch64"}


def efi_enabled(config: Config) -> bool:
    """Packer: efi_boot, or either firmware path set. packwrap: also an arch only UEFI
    boots (arm64) when neither firmware nor a direct kernel is given."""
    if config.efi_boot or config.efi_firmware_code or config.efi_firmware_vars:
        return True
    arch_needs_it = profile(config.qemu_binary).needs_efi
    return arch_needs_it and not config.firmware and not config.get("kernel")


def share_dirs(binary: str) -> list[Path]:
    """Where firmware may be: the system share directories, and QEMU's own (beside bin/)."""
    dirs = [Path(d) for d in _SHARE_DIRS]
    found = shutil.which(binary)
    if found:
        prefix_share = Path(os.path.realpath(found)).parent.parent / "share"
        if prefix_share not in dirs:
            dirs.append(prefix_share)
    return dirs


def find_firmware(binary: str, dirs: list[Path] | None = None) -> tuple[Path, Path]:
    """The host's (code, vars) UEFI pair for `binary`'s guest arch."""
    arch = guest_arch(binary) or "x86_64"
    dirs = share_dirs(binary) if dirs is None else dirs
    for directory in dirs:
        for code, vars_ in _PAIRS.get(arch, []):
            if (directory / code).is_file() and (directory / vars_).is_file():
                return directory / code, directory / vars_
    package = _PACKAGES.get(arch, "the edk2 firmware")
    raise PackwrapError(
        f"efi_boot: no UEFI firmware for {arch} found in {', '.join(map(str, dirs))}; "
        f"install {package} or set efi_firmware_code and efi_firmware_vars"
    )


def resolve(config: Config) -> tuple[Path, Path]:
    """(code, vars template): the configured paths, the rest found on the host."""
    code = Path(config.efi_firmware_code).expanduser() if config.efi_firmware_code else None
    vars_ = Path(config.efi_firmware_vars).expanduser() if config.efi_firmware_vars else None
    if code is None or vars_ is None:
        found_code, found_vars = find_firmware(config.qemu_binary)
        code, vars_ = code or found_code, vars_ or found_vars
    for option, path in (("efi_firmware_code", code), ("efi_firmware_vars", vars_)):
        if not path.is_file():
            raise PackwrapError(f"{option} {path}: no such file")
    return code, vars_


class StepPrepareEfiVars(Step):
    """Packer's EFI vars step: a writable copy of the vars file in the output directory."""

    name = "prepare UEFI variables"

    def run(self, state: State) -> None:
        config = config_of(state)
        firmware = config.firmware
        if firmware and not Path(firmware).expanduser().is_file():
            raise PackwrapError(f"firmware {firmware}: no such file")
        if not efi_enabled(config):
            return
        code, template = resolve(config)
        copy = Path(state.data["output_dir"]) / VARS_NAME
        try:
            shutil.copyfile(template, copy)
        except OSError as exc:
            raise PackwrapError(
                f"efi_firmware_vars {template}: cannot copy it to {copy}: {exc.strerror}"
            ) from None
        state.data["efi_code"] = code.resolve()
        state.data["efi_vars"] = copy.resolve()
        state.ui.say(f"UEFI firmware {code}, variables copied to {copy}")

    def cleanup(self, state: State) -> None:
        """efi_drop_efivars: the image is the disk; the vars copy leaves the artifact."""
        copy = state.data.get("efi_vars")
        if copy and config_of(state).efi_drop_efivars and not state.failed:
            Path(copy).unlink(missing_ok=True)
