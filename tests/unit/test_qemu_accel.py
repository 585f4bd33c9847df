"""`accelerator = "auto"` chooses for the host and the guest arch and says why; an explicit
hardware accelerator for a foreign arch is refused before QEMU starts."""

from __future__ import annotations

import subprocess

import pytest
from packwrap_qemu import accel

from packwrap.errors import PackwrapError


@pytest.fixture(autouse=True)
def _fresh_probe_cache():
    accel.kvm_test_run.cache_clear()
    yield
    accel.kvm_test_run.cache_clear()


def test_arch_names():
    assert accel.guest_arch("/usr/bin/qemu-system-aarch64") == "aarch64"
    assert accel.guest_arch("qemu-system-x86_64.exe") == "x86_64"
    assert accel.guest_arch("my-qemu") is None
    assert accel.host_arch("arm64") == "aarch64"  # macOS spells it arm64
    assert accel.host_arch("AMD64") == "x86_64"
    assert accel.runs_natively("i386", "x86_64") and not accel.runs_natively("x86_64", "aarch64")


def test_auto_on_a_foreign_arch_is_tcg_without_any_test_run(mocker):
    run = mocker.patch("subprocess.run")
    choice = accel.choose("auto", "qemu-system-aarch64", None, system="linux", machine="x86_64")
    assert choice == accel.Choice("tcg", "the guest arch aarch64 is not the host's x86_64")
    run.assert_not_called()


def test_auto_is_kvm_only_after_a_test_run_succeeded(mocker):
    mocker.patch("os.access", return_value=True)
    mocker.patch("shutil.which", return_value="/usr/bin/qemu-system-x86_64")
    run = mocker.patch("subprocess.run")
    run.return_value = subprocess.CompletedProcess([], 133, b"", b"")
    choice = accel.choose("auto", "qemu-system-x86_64", None, system="linux", machine="x86_64")
    assert choice == accel.Choice("kvm", "a KVM test run succeeded")
    argv = run.call_args.args[0]
    assert argv[argv.index("-accel") + 1] == "kvm" and argv[argv.index("-cpu") + 1] == "host"
    accel.kvm_test_run.cache_clear()
    run.return_value = subprocess.CompletedProcess([], 134, b"", b"kvm: failed to set MSR\n")
    choice = accel.choose("auto", "qemu-system-x86_64", None, system="linux", machine="x86_64")
    assert choice == accel.Choice("tcg", "the KVM test run failed (kvm: failed to set MSR)")


def test_auto_without_kvm_device_says_so(mocker):
    mocker.patch("os.access", return_value=False)
    run = mocker.patch("subprocess.run")
    choice = accel.choose("auto", "qemu-system-x86_64", None, system="linux", machine="x86_64")
    assert choice == accel.Choice("tcg", "no usable /dev/kvm")
    run.assert_not_called()


def test_auto_on_macos_is_hvf_for_the_same_arch_only():
    same = accel.choose("auto", "qemu-system-aarch64", None, system="darwin", machine="arm64")
    assert same.accel == "hvf" and "macOS" in same.reason
    other = accel.choose("auto", "qemu-system-x86_64", None, system="darwin", machine="arm64")
    assert other.accel == "tcg"


@pytest.mark.parametrize("requested", ["kvm", "hvf"])
def test_hardware_accelerator_for_a_foreign_arch_is_refused(requested):
    with pytest.raises(PackwrapError, match=f'accelerator = "{requested}" cannot run a aarch64'):
        accel.choose(requested, "qemu-system-aarch64", None, system="linux", machine="x86_64")
    assert accel.choose("tcg", "qemu-system-aarch64", None).accel == "tcg"
