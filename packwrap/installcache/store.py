"""Install cache entries: `<cache root>/installs/<key>/` with the disk, meta.json, key.json.

An entry is staged in `installs/.tmp-*` and renamed into place whole, so a reader sees a
complete entry or none: Ctrl-C or a full disk while writing leaves no entry, and of two
builds storing the same key at once the first rename wins (the other drops its copy;
both builds' own disks are untouched). An entry whose disk no longer matches its
checksum is removed on use. Last use is the mtime of the entry's `used` file. The cache
holds at most `limit` bytes: after a store, the least recently used entries go.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packwrap.atomicfile import PRIVATE, atomic_write
from packwrap.config.size import parse_size
from packwrap.installcache.copy import disk_checksum, sparse_copy
from packwrap.installcache.key import canonical_json

DEFAULT_LIMIT = parse_size("20G").bytes
META = "meta.json"
KEY_DOCUMENT = "key.json"
USED = "used"
DISK = "disk"
STALE_AFTER = 86400.0  # a staging directory this old belongs to no running build


class CacheUnavailable(Exception):
    """The cache directory cannot be used (the build goes on without the cache)."""


class CacheWriteFailed(Exception):
    """An entry could not be written (the build goes on; no entry is left)."""


def installs_root(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CACHE_HOME/packwrap/installs` (the media cache's root rule)."""
    from packwrap.media.cache import cache_root

    return cache_root(env) / "installs"


@dataclass(frozen=True)
class Entry:
    key: str
    path: Path
    meta: dict[str, Any]

    @property
    def disk(self) -> Path:
        return self.path / DISK

    @property
    def short_key(self) -> str:
        return self.key[:12]

    @property
    def created(self) -> float:
        return float(self.meta.get("created", 0))

    @property
    def last_used(self) -> float:
        try:
            return (self.path / USED).stat().st_mtime
        except OSError:
            return self.created

    @property
    def size(self) -> int:
        """Bytes the entry takes on disk (holes not counted)."""
        total = 0
        for f in self.path.iterdir():
            with contextlib.suppress(OSError):
                total += f.stat().st_blocks * 512
        return total

    def file(self, name: str) -> Path:
        """A file stored with the entry (e.g. the temporary SSH key of its install)."""
        return self.path / "files" / name


CopyFn = Callable[[Path, Path, "Callable[[], None] | None"], str]


class Store:
    def __init__(self, root: Path, *, limit: int = DEFAULT_LIMIT, copy: CopyFn | None = None):
        self.root = root
        self.limit = limit
        self.copy = copy or sparse_copy  # the seam tests use for ENOSPC

    def check_writable(self) -> None:
        """CacheUnavailable (one line) when entries cannot be written here."""
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            with tempfile.TemporaryFile(dir=self.root):
                pass
        except OSError as exc:
            raise CacheUnavailable(f"{self.root}: {exc.strerror or exc}") from None

    # -- reading ----------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        path = self.root / key
        try:
            meta = json.loads((path / META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or not (path / DISK).is_file():
            return None
        return Entry(key, path, meta)

    def entries(self) -> list[Entry]:
        if not self.root.is_dir():
            return []
        found = [self.get(p.name) for p in self.root.iterdir() if not p.name.startswith(".")]
        return sorted((e for e in found if e is not None), key=lambda e: e.last_used)

    def verify(self, entry: Entry) -> bool:
        """True when the disk still has the checksum it was stored with."""
        try:
            return disk_checksum(entry.disk) == entry.meta.get("checksum")
        except OSError:
            return False

    def touch(self, entry: Entry) -> None:
        with contextlib.suppress(OSError):
            (entry.path / USED).touch()

    # -- writing ----------------------------------------------------------------------

    def put(
        self,
        key: str,
        disk: Path,
        meta: Mapping[str, Any],
        document: Mapping[str, Any],
        files: Mapping[str, Path] | None = None,
        check: Callable[[], None] | None = None,
    ) -> Entry:
        """Store `disk` (and `files`, kept 0600) as the entry `key`; the entry in place
        (this one or a concurrent build's). CacheWriteFailed leaves nothing behind, nor does
        an exception from `check` (run between blocks of the copy: Ctrl-C)."""
        self.check_writable()
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{key[:12]}-", dir=self.root))
        try:
            digest = self.copy(disk, staging / DISK, check)
            for name, src in (files or {}).items():
                (staging / "files").mkdir(mode=0o700, exist_ok=True)
                atomic_write(staging / "files" / name, Path(src).read_bytes(), mode=PRIVATE)
            full = {**meta, "key": key, "checksum": digest, "created": time.time()}
            atomic_write(staging / META, json.dumps(full, indent=2, sort_keys=True) + "\n")
            atomic_write(staging / KEY_DOCUMENT, canonical_json(document) + "\n")
            (staging / USED).touch()
            try:
                os.rename(staging, self.root / key)
            except OSError:
                if self.get(key) is None:  # not "another build stored it first"
                    raise
        except OSError as exc:
            raise CacheWriteFailed(f"{exc.strerror or exc}") from None
        finally:  # also on Ctrl-C: a staged entry is never left behind
            shutil.rmtree(staging, ignore_errors=True)
        entry = self.get(key)
        if entry is None:
            raise CacheWriteFailed("the entry vanished after it was stored")
        return entry

    def remove(self, entry: Entry) -> None:
        """Out of the way by one rename (readers never see half an entry), then deleted."""
        trash = self.root / f".trash-{entry.key[:12]}-{os.getpid()}-{time.monotonic_ns()}"
        try:
            os.rename(entry.path, trash)
        except OSError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def _sweep(self, now: float) -> None:
        """Staging and trash directories a killed build (SIGKILL) left, after a day."""
        if not self.root.is_dir():
            return
        for path in self.root.glob(".*-*"):
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > STALE_AFTER:
                    shutil.rmtree(path, ignore_errors=True)

    def prune(
        self,
        *,
        older_than: float | None = None,
        max_size: int | None = None,
        keep: str | None = None,
        now: float | None = None,
    ) -> list[Entry]:
        """Remove entries unused for `older_than` seconds, then the least recently used
        until the rest fit in `max_size` bytes (`keep`: a key never removed); the removed."""
        now = time.time() if now is None else now
        self._sweep(now)
        removed: list[Entry] = []
        entries = self.entries()  # least recently used first
        if older_than is not None:
            for e in [e for e in entries if now - e.last_used > older_than and e.key != keep]:
                self.remove(e)
                removed.append(e)
                entries.remove(e)
        if max_size is not None:
            sizes = {e.key: e.size for e in entries}
            total = sum(sizes.values())
            for e in list(entries):
                if total <= max_size:
                    break
                if e.key == keep:
                    continue
                self.remove(e)
                removed.append(e)
                total -= sizes[e.key]
        return removed
