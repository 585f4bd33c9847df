"""The qemu builder on an install cache hit, with the real qemu-img: the disk is a qcow2
overlay of the cached install, flattened into a standalone image at the end; an
install-only build copies the cached disk."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from packwrap_qemu.builder import QemuBuilder
from packwrap_qemu.qemu import install_inputs, output_plan
from packwrap_qemu.step_convert_disk import StepConvertDisk
from packwrap_qemu.step_create_disk import StepCreateDisk

from packwrap.build.steps.install_cache import StepInstallCacheLookup, StepInstallCacheStore
from packwrap.build.steps.output_dir import StepOutputDir
from tests.unit.test_qemu_steps import make_state

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")
INSTALLED = b"installed system" * 64


def info(path: Path) -> dict:
    out = subprocess.run(["qemu-img", "info", "--output=json", str(path)],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return json.loads(out)


def hit(tmp_path: Path, fmt: str = "raw", **values):
    """A state whose lookup hit the install an earlier, identical build stored."""
    first = make_state(tmp_path, format=fmt, disk_size="8M", **values)
    StepInstallCacheLookup(install_inputs).run(first)
    disk = tmp_path / "installed.raw"
    with open(disk, "wb") as fh:
        fh.truncate(8 << 20)
        fh.write(INSTALLED)
    first.data["disk_path"] = disk
    StepInstallCacheStore().run(first)
    state = make_state(tmp_path, force=True, format=fmt, disk_size="8M", **values)
    StepInstallCacheLookup(install_inputs).run(state)
    assert state.data["install_cache_hit"] is not None
    StepOutputDir(output_plan).run(state)
    return state


SSH = {"communicator": "ssh", "ssh_username": "root"}


def test_a_hit_boots_an_overlay_and_the_artifact_is_standalone(tmp_path):
    state = hit(tmp_path, **SSH)
    StepCreateDisk().run(state)
    disk = state.data["disk_path"]
    entry = state.data["install_cache_hit"]
    overlay = info(disk)
    assert overlay["format"] == "qcow2" and overlay["backing-filename"] == str(entry.disk)
    assert state.data["disk_format"] == "qcow2"  # what the provisioning QEMU is told
    StepConvertDisk().run(state)
    flat = info(disk)
    assert flat["format"] == "raw" and "backing-filename" not in flat
    assert disk.read_bytes()[: len(INSTALLED)] == INSTALLED


def test_use_backing_file_keeps_the_artifact_layered_over_the_cache_entry(tmp_path):
    state = hit(tmp_path, fmt="qcow2", use_backing_file=True, **SSH)
    StepCreateDisk().run(state)
    disk = state.data["disk_path"]
    entry = state.data["install_cache_hit"]
    StepConvertDisk().run(state)
    layered = info(disk)
    assert layered["format"] == "qcow2" and layered["backing-filename"] == str(entry.disk)
    assert "layered over" in "\n".join(state.ui.lines)


def test_an_install_only_hit_copies_the_cached_disk(tmp_path):
    state = hit(tmp_path)  # communicator none
    StepCreateDisk().run(state)
    disk = state.data["disk_path"]
    assert info(disk)["format"] == "raw" and "backing-filename" not in info(disk)
    assert disk.read_bytes()[: len(INSTALLED)] == INSTALLED
    skipped = [s.name for s in QemuBuilder().steps(state.config) if not s.applies(state)]
    assert skipped == ["temporary ssh key", "site-set", "local sets", "start QEMU",
                       "installer drift guard", "boot command", "wait for power-off",
                       "start QEMU (disk)", "wait for guest address", "connect", "syspatch",
                       "build record", "generalize", "remove temporary ssh key",
                       "shutdown"]  # fmt: skip
