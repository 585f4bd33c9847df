"""The media cache: verified files keyed by SHA-256, partial downloads, locks, signed lists.

Layout under `$PACKWRAP_CACHE_DIR/media` (default `$XDG_CACHE_HOME/packwrap/media`):

    sha256/<hex>/<filename>          verified media (read-only; outputs hard-link here)
    by-<algo>/<hex>                  sha256 hex of a file known by an md5/sha1/sha512 sum
    partial/<job>/<filename>.part    an unfinished download (+ .part.json: validators)
    locks/<job>.lock                 flock so two fetches of one file do not collide
    lists/<release>/<arch>/SHA256.sig   the signed list, re-verified on every use

Cached media are only ever written by an atomic rename of a verified partial file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from packwrap.atomicfile import atomic_write
from packwrap.errors import PackwrapError
from packwrap.media.checksums import Checksum

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9._+-]*$")


def check_filename(name: str) -> str:
    """Media names become path components: no separators, no dot files."""
    if not _SAFE_NAME.fullmatch(name) or len(name) > 200:
        raise PackwrapError(f"unsafe or invalid media file name {name!r}")
    return name


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("PACKWRAP_CACHE_DIR"):
        return Path(env["PACKWRAP_CACHE_DIR"]).expanduser()
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "packwrap"


class MediaCache:
    def __init__(self, root: Path | None = None):
        self.root = (root or cache_root()) / "media"

    # -- verified media
    def media_path(self, sha256_hex: str, filename: str) -> Path:
        return self.root / "sha256" / sha256_hex / check_filename(filename)

    def sha256_for(self, checksum: Checksum) -> str | None:
        if checksum.algo == "sha256":
            return checksum.hexdigest
        try:
            text = (self.root / f"by-{checksum.algo}" / checksum.hexdigest).read_text().strip()
        except OSError:
            return None
        return text if re.fullmatch(r"[0-9a-f]{64}", text) else None

    def lookup(self, checksum: Checksum, filename: str) -> Path | None:
        hexd = self.sha256_for(checksum)
        if hexd is None:
            return None
        path = self.media_path(hexd, filename)
        return path if path.is_file() else None

    def store(self, part: Path, sha256_hex: str, filename: str, also: Checksum | None) -> Path:
        """Move a verified partial file into place (atomic rename, same file system)."""
        dest = self.media_path(sha256_hex, filename)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(part, 0o444)  # outputs are hard links: make accidental edits fail
        os.replace(part, dest)
        if also is not None and also.algo != "sha256":
            atomic_write(
                self.root / f"by-{also.algo}" / also.hexdigest, sha256_hex.encode(), mode=0o644
            )
        return dest

    def discard(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    # -- partial downloads and locks
    def partial_path(self, job: str, filename: str) -> Path:
        d = self.root / "partial" / job
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{check_filename(filename)}.part"

    @contextlib.contextmanager
    def lock(self, job: str, on_wait: Callable[[Path], None] | None = None) -> Iterator[Path]:
        """Exclusive flock for one download job; waits (Ctrl-C interrupts) if taken."""
        path = self.root / "locks" / f"{job}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait:
                    on_wait(path)
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield path
        finally:
            os.close(fd)  # releases the lock; the file stays (unlinking would race)

    # -- signed lists
    def list_path(self, release: str, arch: str, name: str) -> Path:
        safe = re.compile(r"^[A-Za-z0-9._-]+$")
        for part in (release, arch, name):
            if not safe.fullmatch(part) or part.startswith("."):
                raise PackwrapError(f"invalid release/arch/list name {part!r}")
        return self.root / "lists" / release / arch / name


def job_key(expected: Checksum | None, url: str) -> str:
    """Names the partial file and the lock: by checksum when known, else by URL."""
    if expected is not None:
        return f"{expected.algo}-{expected.hexdigest}"
    return "url-" + hashlib.sha256(url.encode()).hexdigest()[:32]


def packer_target_path(url: str, checksum: str, target_path: str, extension: str) -> Path:
    """Where Packer's download step puts `url` (packer-plugin-sdk's StepDownload, which
    packwrap builds follow so a Packer template finds what fetch-iso put there): a
    target_path with an extension is the file itself; one without (a directory) holds
    <sha1>.<extension>, sha1 of iso_checksum (of the URL when there is none). (With no
    target_path Packer uses its own cache; packwrap asks for iso_target_path instead.)"""
    if not target_path.endswith("/") and Path(target_path).suffix:
        return Path(target_path).expanduser()
    key = checksum if checksum and checksum != "none" else url
    name = hashlib.sha1(key.encode()).hexdigest() + "." + (extension or "iso").lower()
    return Path(target_path).expanduser() / name
