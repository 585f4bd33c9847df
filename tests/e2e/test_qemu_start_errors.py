"""QEMU's own error reaches the user: a QEMU that refuses its command line after its QMP
socket is up, or exits while packwrap waits on the console, is quoted, never hidden."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from packwrap_qemu import accel, driver

from packwrap.build.console import ConsoleEOF, SerialConsole
from packwrap.errors import PackwrapError

pytestmark = pytest.mark.e2e


def _needs(binary: str) -> None:
    if shutil.which(binary) is None:
        pytest.skip(f"needs {binary}")


def test_a_refused_boot_option_is_quoted_and_qemu_reaped(tmp_path: Path):
    # aarch64's virt machine has no boot-order function: QEMU accepts QMP, then exits.
    _needs("qemu-system-aarch64")
    qmp = tmp_path / "q.sock"
    argv = ["qemu-system-aarch64", "-machine", "virt", "-accel", "tcg", "-m", "64",
            "-nodefaults", "-display", "none", "-boot", "once=d", "-S",
            "-qmp", f"unix:{qmp},server=on,wait=off"]  # fmt: skip
    with pytest.raises(PackwrapError) as err:
        vm = driver.QemuProcess(argv, qmp, tmp_path / "qemu.log")
        vm.serial_pty()  # may get here when QEMU exits just after the greeting
        vm.stop()
    assert "QEMU failed to start: qemu-system-aarch64: no function defined to set boot" in str(
        err.value
    )


def test_a_console_that_closes_says_how_qemu_exited(tmp_path: Path):
    # The KVM probe's "BIOS" makes QEMU exit with status 133 as soon as it runs.
    _needs("qemu-system-x86_64")
    qmp = tmp_path / "q.sock"
    argv, status = accel.probe_argv("qemu-system-x86_64", "tcg", "max", str(tmp_path))
    assert status == 133
    argv += ["-S", "-qmp", f"unix:{qmp},server=on,wait=off",
             "-chardev", "pty,id=ser0", "-serial", "chardev:ser0"]  # fmt: skip
    vm = driver.QemuProcess(argv, qmp, tmp_path / "qemu.log")
    try:
        console = SerialConsole(vm.serial_pty(), tmp_path / "console.log")
        console.exit_reason = vm.exit_summary
        vm.cont()
        with pytest.raises(
            ConsoleEOF, match=r"while waiting for 'boot> ': QEMU exited with status 133"
        ):
            console.expect("boot> ", timeout=20)
        console.close()
    finally:
        vm.stop()


@pytest.mark.parametrize(
    ("binary", "cpu"), [("qemu-system-x86_64", "max"), ("qemu-system-aarch64", "cortex-a57")]
)
def test_probe_guests_really_run_under_tcg(tmp_path, binary, cpu):
    # The same probe KVM gets, run under TCG: it proves the guest code exits QEMU as expected.
    _needs(binary)
    argv, expected = accel.probe_argv(binary, "tcg", cpu, str(tmp_path))
    assert subprocess.run(argv, capture_output=True, timeout=20).returncode == expected
