"""Install cache entries: stored whole or not at all, checked on use, LRU-limited."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pytest

from packwrap.installcache.copy import disk_checksum, sparse_copy
from packwrap.installcache.store import (
    CacheUnavailable,
    CacheWriteFailed,
    Store,
    installs_root,
)

DOC = {"version": 1, "core": {"hostname": "h"}}


def disk(tmp_path: Path, name: str = "disk.raw", data: bytes = b"installed") -> Path:
    path = tmp_path / name
    with open(path, "wb") as fh:
        fh.truncate(64 << 20)  # mostly a hole, as an installed disk is
        fh.seek(3 << 20)
        fh.write(data)
    return path


def put(store: Store, src: Path, key: str = "a" * 64, **kw):
    return store.put(key, src, {"release": "7.6", "disk_format": "raw"}, DOC, **kw)


def leftovers(store: Store) -> list[str]:
    return [p.name for p in store.root.iterdir() if p.name.startswith(".")]


def test_the_root_follows_xdg_cache_home(tmp_path):
    assert installs_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "packwrap" / "installs"


def test_an_entry_keeps_the_disk_its_checksum_and_key_document(tmp_path):
    src = disk(tmp_path)
    store = Store(tmp_path / "cache")
    entry = put(store, src)
    assert entry.disk.read_bytes() == src.read_bytes()
    assert entry.disk.stat().st_blocks < src.stat().st_size // 512  # still sparse
    assert entry.meta["checksum"] == disk_checksum(src)
    assert entry.meta["release"] == "7.6"
    assert '"hostname":"h"' in (entry.path / "key.json").read_text()
    assert store.verify(entry)
    assert store.get(entry.key) == entry and leftovers(store) == []


def test_a_damaged_entry_fails_verification(tmp_path):
    store = Store(tmp_path / "cache")
    entry = put(store, disk(tmp_path))
    with open(entry.disk, "r+b") as fh:
        fh.seek(3 << 20)
        fh.write(b"X")
    assert not store.verify(entry)
    store.remove(entry)
    assert store.get(entry.key) is None and leftovers(store) == []


def test_disk_full_while_writing_fails_the_entry_and_leaves_nothing(tmp_path):
    def full(src, dst, check):
        sparse_copy(src, dst, check)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    store = Store(tmp_path / "cache", copy=full)
    with pytest.raises(CacheWriteFailed, match="No space left on device"):
        put(store, disk(tmp_path))
    assert list(store.root.iterdir()) == []


def test_an_interrupted_write_leaves_no_entry(tmp_path):
    calls = []

    def interrupt():
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    src = disk(tmp_path, data=b"x" * (3 << 20))  # several blocks: stopped half-way
    store = Store(tmp_path / "cache")
    with pytest.raises(KeyboardInterrupt):
        put(store, src, check=interrupt)
    assert list(store.root.iterdir()) == []


def test_two_writers_of_one_key_give_one_entry(tmp_path):
    src = disk(tmp_path)
    store = Store(tmp_path / "cache")
    barrier = threading.Barrier(2)

    def slow_copy(s, d, check):
        barrier.wait(5)  # both staged before either renames
        return sparse_copy(s, d, check)

    racing = Store(store.root, copy=slow_copy)
    results = []
    threads = [threading.Thread(target=lambda: results.append(put(racing, src))) for _ in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 2 and results[0].key == results[1].key
    assert [e.key for e in store.entries()] == ["a" * 64]
    assert store.verify(store.entries()[0]) and leftovers(store) == []
    assert src.read_bytes()[3 << 20 :][:9] == b"installed"  # the build's own disk untouched


def test_a_cache_dir_that_is_not_writable_is_unavailable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CacheUnavailable, match="file"):
        Store(blocker / "installs").check_writable()


def test_prune_by_age_then_least_recently_used_by_size(tmp_path):
    store = Store(tmp_path / "cache")
    src = disk(tmp_path, data=os.urandom(2 << 20))
    old, mid, new = (put(store, src, key=c * 64) for c in "abc")
    now = time.time()
    for entry, age in ((old, 30 * 86400), (mid, 2 * 86400), (new, 60)):
        os.utime(entry.path / "used", (now - age, now - age))
    assert [e.key for e in store.prune(older_than=7 * 86400, now=now)] == [old.key]
    assert [e.key[0] for e in store.entries()] == ["b", "c"]
    removed = store.prune(max_size=new.size + 1024, now=now)
    assert [e.key for e in removed] == [mid.key]
    assert [e.key for e in store.entries()] == [new.key]
    assert store.prune(max_size=0, keep=new.key) == []  # the entry just stored stays


def test_prune_sweeps_what_a_killed_build_left_after_a_day(tmp_path):
    store = Store(tmp_path / "cache")
    store.check_writable()
    old, fresh = store.root / ".tmp-abc-1", store.root / ".tmp-def-2"
    for d in (old, fresh):
        d.mkdir()
        (d / "disk").write_bytes(b"half")
    day_ago = time.time() - 2 * 86400
    os.utime(old, (day_ago, day_ago))
    store.prune(max_size=0)
    assert not old.exists() and fresh.exists()  # fresh: maybe a build writing right now


def test_clone_or_copy_gives_the_same_disk_and_never_overwrites(tmp_path):
    from packwrap.installcache.copy import clone_or_copy

    src = disk(tmp_path)
    dst = tmp_path / "copy.raw"
    clone_or_copy(src, dst)  # a reflink where the file system has them, else a copy
    assert dst.read_bytes() == src.read_bytes()
    dst.write_bytes(b"the user's file")
    with pytest.raises(FileExistsError):
        clone_or_copy(src, dst)
    assert dst.read_bytes() == b"the user's file"
