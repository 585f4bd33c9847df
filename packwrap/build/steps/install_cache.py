"""The install cache's two core steps, around a builder's install steps.

StepInstallCacheLookup (before the disk is made) computes the key from the core's inputs
and the builder's (`inputs(state)`, its medium, disk and machine), and on a hit puts the
entry in state "install_cache_hit": the builder then makes its disk from the cached one
and skips every step wrapped in `If(installing, ...)`. The temporary SSH key and the
pinned host key fingerprint the cached install was made with come back with it, so the
provisioning boot logs in as it would have after a fresh install.
StepInstallCacheStore (right after the install ended, before the provisioning boot
changes the disk) stores the installed disk under the key. Neither step ever fails the
build over the cache: a cache that cannot be written is one warning and no cache.

choose_cached_disk is issue 17's one rule for the disk of a hit, for every builder: a copy
when the build only installs, else a copy-on-write overlay of the cached disk, flattened
into a standalone image at the end unless use_backing_file keeps it layered.
"""

from __future__ import annotations

import enum
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packwrap.atomicfile import PRIVATE, atomic_write
from packwrap.build.state import config_of
from packwrap.build.step import Step
from packwrap.build.ui import log_line
from packwrap.durations import format_duration

if TYPE_CHECKING:
    from packwrap.build.state import State
    from packwrap.installcache.store import Entry, Store

InputsFn = Callable[["State"], Mapping[str, Any]]
SSH_KEY_FILE = "ssh_key"


@dataclass
class Pending:
    """A miss: what StepInstallCacheStore needs to store the install."""

    store: Store
    key: str
    document: dict[str, Any]
    replace: bool = False  # -force-install: the new install replaces the entry


def cache_hit(state: State) -> Entry | None:
    return state.data.get("install_cache_hit")


def installing(state: State) -> bool:
    """The condition of every install-only step: False when a cached install is used."""
    return cache_hit(state) is None


class CachedDisk(enum.Enum):
    """How a build on a cached install makes its disk."""

    COPY = "copy"  # the cached disk copied: it is the result (or cannot be a backing file)
    OVERLAY = "overlay"  # an overlay to provision on, flattened into a standalone image
    LAYERED = "layered"  # an overlay kept as the artifact, the cache entry its backing file


def choose_cached_disk(
    state: State, *, provisions: bool, use_backing_file: bool, can_overlay: bool = True
) -> CachedDisk:
    """The disk of a hit, recorded in state for the steps that flatten it at the end.

    An install-only build's artifact is the installed disk itself: a copy. `can_overlay`
    is False where the builder's tool cannot layer on the cached disk's format.
    """
    if not provisions or not can_overlay:
        choice = CachedDisk.COPY
    else:
        choice = CachedDisk.LAYERED if use_backing_file else CachedDisk.OVERLAY
    state.data["cached_disk"] = choice
    return choice


def cached_disk(state: State) -> CachedDisk | None:
    """What choose_cached_disk decided (None: no hit, or not decided yet)."""
    return state.data.get("cached_disk")


def must_flatten(state: State) -> bool:
    """The disk is an overlay of the cached install that the artifact must not keep."""
    return cached_disk(state) is CachedDisk.OVERLAY


def created_text(entry: Entry) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(entry.created))


def _release(state: State) -> str | None:
    from packwrap.blueprint.record import read_record, resolve_release

    return resolve_release(
        flag=None,
        record=read_record(Path(state.template_dir)),
        variables={"release": state.data.get("release")},
        media=config_of(state).values(),
    )


class StepInstallCacheLookup(Step):
    name = "install cache"

    def __init__(self, inputs: InputsFn) -> None:
        self.inputs = inputs
        self.key_dir: Path | None = None

    def run(self, state: State) -> None:
        from packwrap.installcache.key import install_document, key_of
        from packwrap.installcache.store import CacheUnavailable, Store, installs_root

        state.data["install_cache_hit"] = None
        if not config_of(state).install_cache:
            log_line(state.ui, "install cache: off (install_cache = false)")
            return
        store = Store(installs_root())
        try:
            store.check_writable()
        except CacheUnavailable as exc:
            state.ui.error(f"Warning: install cache not writable ({exc}); building without it")
            return
        document = install_document(state, self.inputs(state))
        key = key_of(document)
        force = state.options.force_install
        state.data["install_cache_pending"] = Pending(store, key, document, replace=force)
        entry = store.get(key)
        if force:
            state.ui.say(f"Install cache: -force-install, installing (key {key[:12]})")
            return
        if entry is None:
            state.ui.say(f"Install cache: no cached install for key {key[:12]}; installing")
            return
        if not store.verify(entry) or not self._restore(state, entry):
            state.ui.error(
                f"Warning: install cache entry {entry.short_key} is damaged (checksum "
                "mismatch or missing files): removed; installing"
            )
            store.remove(entry)
            return
        store.touch(entry)
        del state.data["install_cache_pending"]
        state.data["install_cache_hit"] = entry
        when = created_text(entry)
        state.ui.say(f"Install skipped: cached install {entry.short_key} from {when}")

    def _restore(self, state: State, entry: Entry) -> bool:
        """What the cached install was made with: its temporary key, its host key pin."""
        carry = entry.meta.get("carry") or {}
        if carry.get("ssh_host_key_fingerprint"):
            state.data["ssh_host_key_fingerprint"] = carry["ssh_host_key_fingerprint"]
        if not carry.get("ssh_public_key"):
            return True
        stored = entry.file(SSH_KEY_FILE)
        if not stored.is_file():
            return False
        self.key_dir = Path(tempfile.mkdtemp(prefix="packwrap-key-"))
        private = self.key_dir / "id_ed25519"
        atomic_write(private, stored.read_bytes(), mode=PRIVATE)
        state.data["ssh_private_key_file"] = private
        state.data["ssh_public_key"] = carry["ssh_public_key"]
        return True

    def cleanup(self, state: State) -> None:
        if self.key_dir is not None:
            shutil.rmtree(self.key_dir, ignore_errors=True)
            self.key_dir = None


class StepInstallCacheStore(Step):
    name = "store install in cache"

    def run(self, state: State) -> None:
        from packwrap.installcache.store import CacheWriteFailed

        pending: Pending | None = state.data.pop("install_cache_pending", None)
        if pending is None or cache_hit(state) is not None:
            return
        store = pending.store
        carry = {
            "ssh_public_key": state.data.get("ssh_public_key") if self._temporary(state) else None,
            "ssh_host_key_fingerprint": state.data.get("ssh_host_key_fingerprint"),
        }
        files = {}
        if carry["ssh_public_key"]:
            files[SSH_KEY_FILE] = Path(state.data["ssh_private_key_file"])
        builder_inputs = pending.document.get("builder_inputs") or {}
        meta = {
            "builder": state.source_type,
            "build": state.build_name,
            "release": _release(state),
            "disk_format": builder_inputs.get("disk_format"),
            "carry": carry,
        }
        if pending.replace and (old := store.get(pending.key)) is not None:
            store.remove(old)
        start = time.monotonic()
        try:
            entry = store.put(
                pending.key,
                Path(state.data["disk_path"]),
                meta,
                pending.document,
                files,
                check=state.check_cancelled,
            )
        except CacheWriteFailed as exc:
            state.ui.error(f"Warning: install cache: could not store the install ({exc}); going on")
            return
        took = format_duration(time.monotonic() - start)
        state.ui.say(f"Install cached as {entry.short_key} in {store.root} ({took})")
        for gone in store.prune(max_size=store.limit, keep=entry.key):
            state.ui.say(f"Install cache: removed {gone.short_key} (least recently used)")

    @staticmethod
    def _temporary(state: State) -> bool:
        from packwrap.communicator.steps import needs_temporary_key

        return needs_temporary_key(state) and bool(state.data.get("ssh_private_key_file"))
