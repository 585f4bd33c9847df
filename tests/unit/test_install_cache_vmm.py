"""The openbsd-vmm builder on an install cache hit: a build that provisions a qcow2 disk
boots a `vmctl create -b` overlay of the cached install and ends with `vmctl create -i`
flattening it into the standalone image (use_backing_file keeps the overlay instead); a
raw or install-only build copies the cached disk. The install steps are skipped, the
provisioning steps are not; a miss runs every install step."""

from __future__ import annotations

from pathlib import Path

import pytest
from packwrap_vmm.builder import VmmBuilder
from packwrap_vmm.step_create_disk import StepCreateDisk
from packwrap_vmm.step_flatten_disk import StepFlattenDisk
from packwrap_vmm.vmm import install_inputs, output_plan

from packwrap.build.runner import run_steps
from packwrap.build.step import Step
from packwrap.build.steps.install_cache import (
    CachedDisk,
    StepInstallCacheLookup,
    StepInstallCacheStore,
    cached_disk,
)
from packwrap.build.steps.output_dir import StepOutputDir
from packwrap.errors import Cancelled, PackwrapError
from tests.vmm_support import FakeVmctl, make_state

INSTALL_STEPS = ["start vm (install)", "http server", "boot command", "wait for install"]
SSH = {"communicator": "ssh", "ssh_username": "root"}
QCOW2_SSH = {"disk_format": "qcow2", **SSH}


def cached(tmp_path: Path, fake: FakeVmctl, **values):
    """A state whose lookup hit: an earlier build with the same inputs stored its disk."""
    first = make_state(tmp_path, fake, **values)
    StepInstallCacheLookup(install_inputs).run(first)
    disk = tmp_path / "installed.img"
    disk.write_bytes(b"QFI\xfb installed" + bytes(4096))
    first.data["disk_path"] = str(disk)
    StepInstallCacheStore().run(first)
    state = make_state(tmp_path, fake, force=True, **values)
    StepInstallCacheLookup(install_inputs).run(state)
    assert state.data["install_cache_hit"] is not None
    return state, disk


def make_disk(state) -> None:
    StepOutputDir(output_plan).run(state)
    StepCreateDisk().run(state)


def names_that_run(state) -> list[str]:
    return [s.name for s in VmmBuilder().steps(state.config) if s.applies(state)]


def out_files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "out").iterdir())


def test_a_hit_skips_the_install_steps_and_ends_by_flattening(tmp_path, fake):
    state, _ = cached(tmp_path, fake, **QCOW2_SSH)
    make_disk(state)
    running = names_that_run(state)
    assert not set(INSTALL_STEPS) & set(running)
    assert running[-6:] == ["start vm (provision)", "connect", "provision",
                            "remove temporary ssh key", "shutdown", "flatten disk"]  # fmt: skip
    miss = make_state(tmp_path, fake, **QCOW2_SSH)
    miss.data["install_cache_hit"] = None
    assert all(n in names_that_run(miss) for n in INSTALL_STEPS)
    assert "flatten disk" not in names_that_run(miss)


def test_a_provisioned_qcow2_hit_boots_an_overlay_then_flattens_it(tmp_path, fake):
    state, _ = cached(tmp_path, fake, doas=True, **QCOW2_SSH)
    entry = state.data["install_cache_hit"]
    make_disk(state)
    overlay = tmp_path / "out" / ".myvm.qcow2.overlay"
    assert fake.calls[-1] == ["create", "-b", str(entry.disk), f"qcow2:{overlay}"]
    assert state.data["disk_path"] == str(overlay)  # what the provisioning boot starts
    assert f"Creating qcow2 overlay {overlay} on cached install {entry.short_key}" in (
        state.ui.text
    )
    overlay.write_bytes(b"QFI\xfb provisioned")  # the provisioners' change
    StepFlattenDisk().run(state)
    final = tmp_path / "out" / "myvm.qcow2"
    verb, flag, src, dest = fake.calls[-1]
    assert (verb, flag, src) == ("create", "-i", str(overlay))
    assert dest.startswith(f"qcow2:{tmp_path / 'out'}/.myvm.qcow2.")  # a temporary name
    assert fake.argvs[-1][0] == "vmctl"  # as the user, also with doas = true
    assert final.read_bytes() == b"QFI\xfb provisioned"
    assert final.stat().st_mode & 0o777 == 0o600
    assert out_files(tmp_path) == ["myvm.qcow2"]  # no overlay, no temporary file
    assert state.data["disk_path"] == str(final)  # the artifact's path, as on a miss
    assert f"Flattening {overlay} into {final} with vmctl create -i" in state.ui.text


def test_an_overlay_left_by_an_aborted_build_needs_force(tmp_path, fake):
    state, _ = cached(tmp_path, fake, **QCOW2_SSH)  # cached() makes the hit's state -force
    overlay = tmp_path / "out" / ".myvm.qcow2.overlay"
    overlay.parent.mkdir()
    overlay.write_bytes(b"left")
    state.options.force = False
    with pytest.raises(PackwrapError, match=f"^{overlay} exists, left by an earlier build"):
        make_disk(state)
    assert overlay.read_bytes() == b"left" and not any(c[0] == "create" for c in fake.calls)
    state.options.force = True
    make_disk(state)
    assert f"Deleting the previous overlay {overlay} (-force)" in state.ui.text
    assert fake.calls[-1][:2] == ["create", "-b"]


def test_use_backing_file_keeps_the_vmctl_create_b_overlay(tmp_path, fake):
    state, _ = cached(tmp_path, fake, use_backing_file=True, **QCOW2_SSH)
    make_disk(state)
    entry = state.data["install_cache_hit"]
    disk = tmp_path / "out" / "myvm.qcow2"
    assert fake.calls[-1] == ["create", "-b", str(entry.disk), f"qcow2:{disk}"]
    assert cached_disk(state) is CachedDisk.LAYERED
    assert "flatten disk" not in names_that_run(state)
    assert state.data["disk_path"] == str(disk)


@pytest.mark.parametrize(
    "values",
    [
        {},  # install only
        {"disk_format": "qcow2"},  # install only
        {"disk_format": "qcow2", "use_backing_file": True},  # install only: the rule's order
        SSH,  # raw: vmctl create -b needs a qcow2 base
    ],
)
def test_raw_and_install_only_hits_copy_the_cached_disk(tmp_path, fake, values):
    state, installed = cached(tmp_path, fake, **values)
    make_disk(state)
    assert not any(c[0] == "create" for c in fake.calls)
    assert Path(state.data["disk_path"]).read_bytes() == installed.read_bytes()
    assert Path(state.data["disk_path"]).name == f"myvm.{values.get('disk_format', 'raw')}"
    assert "Copying the cached install " in state.ui.text
    assert cached_disk(state) is CachedDisk.COPY
    assert "flatten disk" not in names_that_run(state)


class Provision(Step):
    """The provisioning boot's part: change the disk it was given; `then` may fail."""

    name = "provision"

    def __init__(self, then=None):
        self.then = then

    def run(self, state):
        Path(state.data["disk_path"]).write_bytes(b"QFI\xfb provisioned")
        if self.then:
            self.then(state)


def build(state, *steps: Step) -> None:
    run_steps([StepOutputDir(output_plan), StepCreateDisk(), *steps], state)


def test_a_failing_vmctl_create_i_is_quoted_and_leaves_nothing(tmp_path, fake):
    state, _ = cached(tmp_path, fake, **QCOW2_SSH)
    (tmp_path / "out").mkdir()  # a shared output directory: it stays, empty
    fake.fail_create_i = "vmctl: failed to write to destination\n"
    with pytest.raises(PackwrapError) as failed:
        build(state, Provision(), StepFlattenDisk())
    assert str(failed.value) == "vmctl create -i failed: vmctl: failed to write to destination"
    assert out_files(tmp_path) == []  # no half-written image, no overlay


@pytest.mark.parametrize("vmctl_too", [False, True], ids=["packwrap", "process-group"])
def test_ctrl_c_during_the_flattening_leaves_nothing(tmp_path, fake, vmctl_too):
    state, _ = cached(tmp_path, fake, **QCOW2_SSH)
    (tmp_path / "out").mkdir()
    real = fake._create
    fake.fail_create_i = "" if vmctl_too else None  # SIGINT at the terminal ends vmctl too

    def interrupted(argv, args):
        done = real(argv, args)
        if args[1] == "-i":
            state.cancel_event.set()  # Ctrl-C while vmctl create -i ran
        return done

    fake._create = interrupted
    with pytest.raises(Cancelled):
        build(state, Provision(), StepFlattenDisk())
    assert any(c[:2] == ["create", "-i"] for c in fake.calls)
    assert out_files(tmp_path) == []


def test_ctrl_c_right_after_the_flattening_removes_the_image(tmp_path, fake):
    """The runner checks for Ctrl-C after each step: a stopped build leaves no image."""
    state, _ = cached(tmp_path, fake, **QCOW2_SSH)
    (tmp_path / "out").mkdir()

    class CtrlC(Step):
        name = "interrupt"

        def run(self, state):
            state.cancel_event.set()

    with pytest.raises(Cancelled):
        build(state, Provision(), StepFlattenDisk(), CtrlC())
    assert out_files(tmp_path) == []
