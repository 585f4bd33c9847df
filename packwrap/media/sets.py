"""`fetch-iso --sets`: a release's sets and SHA256.sig in the media cache, as a local mirror.

Every set goes through the same path as the install medium (packwrap/media/fetch.py):
its line in the release's SHA256.sig, verified with signify, then a resumable download
into the content-addressed cache, moved into place only when its SHA256 matches. The
mirror directory `<cache>/media/sets/<release>/<arch>/` then holds hard links to those
files, the SHA256.sig itself (the installer verifies it again) and an index.txt; the
build serves it as `/pub/OpenBSD/<release>/<arch>/` from its own HTTP server
(packwrap/build/steps/local_sets.py), so the install needs no network and no
"Continue without verification".
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
from pathlib import Path

from packwrap.errors import PackwrapError
from packwrap.media.cache import MediaCache
from packwrap.media.checksums import parse_checksum_list
from packwrap.media.fetch import FetchRequest, fetch
from packwrap.media.progress import NullProgress, Progress

#: Files of a release directory that are install media or boot files, not sets.
_NOT_A_SET = re.compile(r"\.(iso|img|fs|efi|bin|EFI)$|^(cdbr|cdboot|pxeboot|boot)$|^SHA256")


def mirror_dir(cache: MediaCache, release: str, arch: str) -> Path:
    """The local mirror of one release's sets (exists once fetch_sets has run)."""
    cache.list_path(release, arch, "SHA256.sig")  # refuses unsafe release/arch names
    return cache.root / "sets" / release / arch


def set_names(listing: bytes) -> list[str]:
    """The sets a verified SHA256 lists (install media and boot blocks left out)."""
    names = parse_checksum_list(listing.decode("utf-8", "replace"))
    return sorted(n for n in names if not _NOT_A_SET.search(n))


@dataclasses.dataclass
class SetsResult:
    directory: Path
    names: list[str]
    fetched: list[str]  # downloaded now (the rest came from the cache)
    how: str


def _first_set(release: str) -> str:
    from packwrap.media.keys import release_tag

    return f"base{release_tag(release)}.tgz"  # every release has it


def fetch_sets(
    req: FetchRequest, *, cache: MediaCache | None = None, progress: Progress | None = None
) -> SetsResult:
    """Fetch and verify the release's sets into the cache; lay out the local mirror."""
    cache = cache or MediaCache()
    progress = progress or NullProgress()
    if not req.release or req.release == "snapshots":
        raise PackwrapError(
            "--sets needs a release: --release X.Y, or a project naming one (snapshots, which "
            "change daily, are not mirrored)"
        )
    if req.checksum is not None or req.insecure_unsigned:
        raise PackwrapError("--sets verifies with the release's SHA256.sig (signify) only")
    base = _first_set(req.release)
    one = dataclasses.replace(req, filename=base, output=None)
    first = fetch(one, cache=cache, progress=progress)
    if first.signed_list is None or first.listing is None:
        raise PackwrapError("--sets: the release's SHA256.sig was not verified")
    names = set_names(first.listing)
    paths = {base: first.cache_path}
    fetched = [base] if not first.from_cache else []
    for name in names:
        if name in paths:
            continue
        result = fetch(dataclasses.replace(one, filename=name), cache=cache, progress=progress)
        paths[name] = result.cache_path
        if not result.from_cache:
            fetched.append(name)
    directory = mirror_dir(cache, req.release, req.arch)
    _lay_out(directory, paths, first.signed_list)
    how = first.how.rsplit(" -> ", 1)[0] + f" -> {len(paths)} sets OK"
    return SetsResult(directory, sorted(paths), fetched, how)


def _lay_out(directory: Path, paths: dict[str, Path], signed: bytes) -> None:
    """The mirror directory, complete or not at all: built beside it, then renamed."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        for name, path in paths.items():
            dest = staging / name
            try:
                os.link(path, dest)
            except OSError:
                shutil.copyfile(path, dest)
        (staging / "SHA256.sig").write_bytes(signed)
        # A mirror's `ls -l` listing: install.sub adds the names it finds there to
        # those of the signed SHA256 (unverified names then ask to continue).
        listing = "".join(
            f"-r--r--r--  1 0  0  {(staging / n).stat().st_size} Jan  1 00:00 {n}\n"
            for n in sorted(paths)
        )
        (staging / "index.txt").write_text(listing)
        old = directory.with_name(f".{directory.name}-old")
        if directory.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
        os.replace(staging, directory)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
