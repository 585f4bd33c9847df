"""The openbsd-vmm builder on an install cache hit: the disk comes from the cached
install (a copy, or `vmctl create -b` with use_backing_file), the install steps are
skipped, the provisioning steps are not; a miss runs every install step."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from packwrap_vmm.builder import VmmBuilder
from packwrap_vmm.step_create_disk import StepCreateDisk
from packwrap_vmm.vmm import install_inputs, output_plan

from packwrap.build.steps.install_cache import StepInstallCacheLookup, StepInstallCacheStore
from packwrap.build.steps.output_dir import StepOutputDir
from tests.unit.test_vmm_steps import FakeVmctl, make_state


@pytest.fixture
def fake():
    f = FakeVmctl()
    yield f
    os.close(f.master)
    os.close(f.slave)


INSTALL_STEPS = ["start vm (install)", "http server", "boot command", "wait for install"]


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


def names_that_run(state) -> list[str]:
    return [s.name for s in VmmBuilder().steps(state.config) if s.applies(state)]


def test_a_hit_skips_the_install_steps_and_keeps_provisioning(tmp_path, fake):
    state, _ = cached(tmp_path, fake, communicator="ssh", ssh_username="root")
    running = names_that_run(state)
    assert not set(INSTALL_STEPS) & set(running)
    assert running[-5:] == ["start vm (provision)", "connect", "provision",
                            "remove temporary ssh key", "shutdown"]  # fmt: skip
    miss = make_state(tmp_path, fake, communicator="ssh", ssh_username="root")
    miss.data["install_cache_hit"] = None
    assert all(n in names_that_run(miss) for n in INSTALL_STEPS)


def test_a_hit_copies_the_cached_disk_standalone(tmp_path, fake):
    state, installed = cached(tmp_path, fake)
    StepOutputDir(output_plan).run(state)
    StepCreateDisk().run(state)
    assert not any(c[0] == "create" for c in fake.calls)
    assert Path(state.data["disk_path"]).read_bytes() == installed.read_bytes()
    assert "Copying the cached install " in state.ui.text


def test_use_backing_file_makes_a_vmctl_create_b_overlay(tmp_path, fake):
    state, _ = cached(tmp_path, fake, disk_format="qcow2", use_backing_file=True)
    StepOutputDir(output_plan).run(state)
    StepCreateDisk().run(state)
    entry = state.data["install_cache_hit"]
    disk = tmp_path / "out" / "myvm.qcow2"
    assert fake.calls[-1] == ["create", "-b", str(entry.disk), f"qcow2:{disk}"]
