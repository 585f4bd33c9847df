"""Which accelerator QEMU gets: `auto` chooses for the host and the guest arch, and says why.

KVM only when the guest arch is the host's and a KVM test run really executed guest code;
HVF on macOS for the host's own arch; TCG otherwise. An explicit hardware accelerator for a
foreign arch is refused before QEMU starts (QEMU would only say "invalid accelerator").
"""

from __future__ import annotations

import functools
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from packwrap.sdk import PackwrapError

#: Accelerators that run guest code on the host CPU: the guest arch must be the host's.
HARDWARE = ("kvm", "hvf", "whpx", "hax")

_MACHINE_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "i386": "i386", "i686": "i386",
                 "aarch64": "aarch64", "arm64": "aarch64"}  # fmt: skip
#: Guest archs a host CPU runs natively (a 64-bit x86 runs 32-bit x86 guests).
_NATIVE = {"x86_64": ("x86_64", "i386"), "aarch64": ("aarch64",), "i386": ("i386",)}


@dataclass(frozen=True)
class Choice:
    accel: str
    reason: str  # why `auto` chose it; "" for an explicit choice


def guest_arch(binary: str) -> str | None:
    """The guest arch of a qemu-system-<arch> binary (None for other names)."""
    m = re.search(r"qemu-system-([a-z0-9_]+?)(?:\.exe)?$", os.path.basename(binary))
    return m.group(1) if m else None


def host_arch(machine: str | None = None) -> str:
    machine = (machine or platform.machine()).lower()
    return _MACHINE_ARCH.get(machine, machine)


def runs_natively(guest: str | None, host: str) -> bool:
    return guest is None or guest in _NATIVE.get(host, (host,))


# The probe guests: each makes QEMU exit with a known status as soon as it runs, which
# proves the vCPU really executes guest code under the accelerator (a /dev/kvm that opens
# is not enough: on nested hosts `-cpu host` aborts on an MSR or hits emulation failures).
# x86: `mov al,0x42; out 0xf4,al; hlt` at the reset vector; isa-debug-exit then exits
# with (0x42 << 1) | 1 = 133.
_X86_CODE = bytes([0xB0, 0x42, 0xE6, 0xF4, 0xF4])
_X86_EXIT = 133
# aarch64 (virt, code at flash address 0): `movz x0,#8; movk x0,#0x8400,lsl 16; hvc #0;
# b .` is PSCI SYSTEM_OFF; QEMU (TCG) or KVM powers the machine off: exit status 0.
_ARM_CODE = b"".join(w.to_bytes(4, "little") for w in (0xD2800100, 0xF2B08000, 0xD4000002,
                                                        0x14000000))  # fmt: skip


def probe_argv(binary: str, accel: str, cpu_model: str, directory: str) -> tuple[list[str], int]:
    """(QEMU command line, expected exit status) of a probe guest for `binary`'s arch."""
    base = [binary, "-accel", accel, "-cpu", cpu_model, "-m", "16", "-nodefaults",
            "-no-user-config", "-display", "none"]  # fmt: skip
    path = os.path.join(directory, "probe.bin")
    if guest_arch(binary) == "aarch64":
        with open(path, "wb") as f:
            f.write(_ARM_CODE.ljust(65536, b"\0"))
        return [*base, "-machine", "virt", "-bios", path], 0
    image = bytearray(b"\xf4" * 65536)
    image[-16 : -16 + len(_X86_CODE)] = _X86_CODE
    with open(path, "wb") as f:
        f.write(image)
    exit_device = ["-device", "isa-debug-exit,iobase=0xf4,iosize=1"]
    return [*base, "-machine", "pc", "-bios", path, *exit_device], _X86_EXIT


@functools.lru_cache(maxsize=8)
def kvm_test_run(binary: str, cpu_model: str) -> str | None:
    """None if KVM ran the probe guest with `cpu_model`; else why not (one short phrase)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "no usable /dev/kvm"
    if shutil.which(binary) is None:
        return f"{binary} not found"
    if guest_arch(binary) not in ("x86_64", "i386", "aarch64"):
        return f"no KVM test guest for {binary}"
    with tempfile.TemporaryDirectory(prefix="packwrap-kvm-") as tmp:
        argv, expected = probe_argv(binary, "kvm", cpu_model, tmp)
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=10)
        except subprocess.TimeoutExpired:
            return "the KVM test run did not finish in 10 s"
        except OSError as exc:
            return f"the KVM test run could not start ({exc.strerror})"
    if proc.returncode == expected:
        return None
    said = proc.stderr.decode(errors="replace").strip().splitlines()
    return "the KVM test run failed" + (f" ({said[-1]})" if said else f" (exit {proc.returncode})")


def choose(requested: str, binary: str, cpu_model: str | None, *,
           system: str | None = None, machine: str | None = None) -> Choice:  # fmt: skip
    """The accelerator for `requested` (Packer's values) on this host."""
    system = system or sys.platform
    host, guest = host_arch(machine), guest_arch(binary)
    if requested in HARDWARE and not runs_natively(guest, host):
        raise PackwrapError(
            f'accelerator = "{requested}" cannot run a {guest} guest ({binary}) on this '
            f'{host} host; use "tcg" or "auto"'
        )
    if requested != "auto":
        return Choice(requested, "")
    if not runs_natively(guest, host):
        return Choice("tcg", f"the guest arch {guest} is not the host's {host}")
    if system == "darwin":
        return Choice("hvf", f"macOS host, {guest or host} guest on a {host} CPU")
    if not system.startswith("linux"):
        return Choice("tcg", f"no hardware accelerator probed on {system}")
    failure = kvm_test_run(binary, cpu_model or "host")
    if failure is None:
        return Choice("kvm", "a KVM test run succeeded")
    return Choice("tcg", failure)
