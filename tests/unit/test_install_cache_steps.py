"""The install cache's core steps: miss then store, hit, damaged entry, switches, and a
cache directory that cannot be written (the build goes on, with one warning)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from packwrap.build.steps.install_cache import (
    CachedDisk,
    StepInstallCacheLookup,
    StepInstallCacheStore,
    cached_disk,
    choose_cached_disk,
    installing,
    must_flatten,
)
from packwrap.installcache.store import Store, installs_root
from tests.state_support import make_state


def inputs(state):
    return {"disk_format": "raw", "medium": "sha256:m"}


def build_state(tmp_path: Path, ui=None, **options):
    config = {"communicator": "none", "install_cache": options.pop("install_cache", True)}
    state = make_state(config, ui=ui, template_dir=tmp_path, **options)
    disk = tmp_path / f"disk-{len(list(tmp_path.glob('disk-*')))}.raw"
    disk.write_bytes(b"installed system" + bytes(4096))
    state.data["disk_path"] = disk
    return state


def run_build(tmp_path: Path, **options):
    """The cache steps of one build: lookup, then (an install ran) store."""
    state = build_state(tmp_path, **options)
    StepInstallCacheLookup(inputs).run(state)
    StepInstallCacheStore().run(state)
    return state


def test_a_miss_stores_the_install_and_the_next_build_hits(tmp_path):
    first = run_build(tmp_path)
    assert installing(first)
    assert any(line.startswith("Install cached as ") for line in first.ui.lines)
    second = run_build(tmp_path)
    assert not installing(second)
    entry = second.data["install_cache_hit"]
    assert any(
        line.startswith(f"Install skipped: cached install {entry.short_key} from ")
        for line in second.ui.lines
    )
    assert entry.disk.read_bytes() == first.data["disk_path"].read_bytes()


def test_a_damaged_entry_is_removed_and_the_build_installs(tmp_path):
    run_build(tmp_path)
    (entry,) = Store(installs_root()).entries()
    with open(entry.disk, "r+b") as fh:
        fh.write(b"X")
    state = run_build(tmp_path)
    assert installing(state)
    assert f"Warning: install cache entry {entry.short_key} is damaged" in state.ui.errors[0]
    (fresh,) = Store(installs_root()).entries()  # rebuilt by this build's store step
    assert Store(installs_root()).verify(fresh)


def test_force_install_installs_and_replaces_the_entry(tmp_path):
    run_build(tmp_path)
    (old,) = Store(installs_root()).entries()
    state = run_build(tmp_path, force_install=True)
    assert installing(state)
    assert any("-force-install" in line for line in state.ui.lines)
    (new,) = Store(installs_root()).entries()
    assert new.created > old.created


def test_install_cache_false_neither_looks_up_nor_stores(tmp_path):
    run_build(tmp_path)
    state = run_build(tmp_path, install_cache=False)
    assert installing(state) and "install_cache_pending" not in state.data
    assert not any("Install" in line for line in state.ui.lines)


def test_a_cache_dir_that_is_not_writable_is_one_warning(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    state = run_build(tmp_path)
    assert installing(state)
    (warning,) = state.ui.errors
    assert warning.startswith("Warning: install cache not writable (")
    assert warning.endswith("; building without it") and "\n" not in warning


def test_disk_full_fails_the_entry_not_the_build(tmp_path, monkeypatch):
    import errno

    def full(src, dst, check):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("packwrap.installcache.store.sparse_copy", full)  # the store's copy
    state = run_build(tmp_path)
    (warning,) = state.ui.errors
    assert warning == (
        "Warning: install cache: could not store the install (No space left on device); going on"
    )
    assert Store(installs_root()).entries() == []


def test_a_hit_brings_back_the_temporary_key_of_the_cached_install(tmp_path):
    from packwrap.communicator.keys import make_temporary_key_pair

    def ssh_state():
        state = make_state(
            {"communicator": "ssh", "ssh_username": "root", "install_cache": True},
            template_dir=tmp_path,
        )
        state.data["disk_path"] = tmp_path / "disk.raw"
        state.data["disk_path"].write_bytes(b"installed")
        return state

    first = ssh_state()
    StepInstallCacheLookup(inputs).run(first)
    pair = make_temporary_key_pair(tmp_path / "key", comment="packwrap-qemu.t")
    first.data["ssh_private_key_file"] = pair.private_key_file
    first.data["ssh_public_key"] = pair.public_key
    first.data["ssh_host_key_fingerprint"] = "SHA256:pinned"
    StepInstallCacheStore().run(first)
    (entry,) = Store(installs_root()).entries()
    assert (entry.file("ssh_key").stat().st_mode & 0o777) == 0o600

    second = ssh_state()
    step = StepInstallCacheLookup(inputs)
    step.run(second)
    assert not installing(second)
    assert second.data["ssh_public_key"] == pair.public_key
    restored = Path(second.data["ssh_private_key_file"])
    assert restored.read_bytes() == pair.private_key_file.read_bytes()
    assert second.data["ssh_host_key_fingerprint"] == "SHA256:pinned"
    step.cleanup(second)
    assert not restored.exists()


def test_ctrl_c_while_storing_leaves_no_entry(tmp_path):
    from packwrap.errors import Cancelled

    state = build_state(tmp_path)
    state.data["disk_path"].write_bytes(os.urandom(3 << 20))
    StepInstallCacheLookup(inputs).run(state)
    state.cancel_event.set()  # Ctrl-C: the copy stops at its next block
    with pytest.raises(Cancelled):
        StepInstallCacheStore().run(state)
    root = installs_root()
    assert list(root.iterdir()) == []


@pytest.mark.parametrize(
    "provisions,use_backing_file,can_overlay,choice",
    [
        (False, False, True, CachedDisk.COPY),  # install only: the cached disk is the result
        (False, True, True, CachedDisk.COPY),
        (True, False, False, CachedDisk.COPY),  # the tool cannot layer on this format
        (True, True, False, CachedDisk.COPY),
        (True, False, True, CachedDisk.OVERLAY),  # provisioned on an overlay, then flattened
        (True, True, True, CachedDisk.LAYERED),  # use_backing_file: the overlay is the artifact
    ],
)
def test_the_disk_of_a_hit_one_rule_for_every_builder(
    provisions, use_backing_file, can_overlay, choice
):
    state = make_state({})
    assert cached_disk(state) is None and not must_flatten(state)
    got = choose_cached_disk(
        state, provisions=provisions, use_backing_file=use_backing_file, can_overlay=can_overlay
    )
    assert got is choice and cached_disk(state) is choice
    assert must_flatten(state) == (choice is CachedDisk.OVERLAY)
