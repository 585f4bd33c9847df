"""fetch-iso, the whole flow: expected checksum -> cache -> download -> verify -> output.

1. Expected checksum: `--checksum` (Packer forms), or the release's signed SHA256.sig
   verified with a signify key (cached, re-verified on each use, so a second fetch needs
   no network), or -- only with --insecure-unsigned -- the unsigned SHA256.
2. Under a per-file lock: a cached copy is re-hashed and used; else the file is
   downloaded into a partial file, hashed on the way, and moved into the cache by an
   atomic rename only when its checksum matches.
3. The output is a hard link to the cached file (reflink, then copy, as fallbacks).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.errors import PackwrapError, UsageError
from packwrap.media import download as dl
from packwrap.media.cache import MediaCache, check_filename, job_key
from packwrap.media.checksums import Checksum, lookup, parse_checksum_list, parse_iso_checksum
from packwrap.media.keys import find_key, key_file_name, no_key_error
from packwrap.media.progress import NullProgress, Progress
from packwrap.media.signify import load_public_key, verify_embedded

if TYPE_CHECKING:
    import requests

# The HTTP session, opened on first use (a fetch from the cache needs none).
_GetSession = Callable[[], "requests.Session"]
# Reads a fetched checksum list: (data, where it came from) -> the list's text.
_ReadList = Callable[[bytes, str], bytes]

DEFAULT_MIRROR = "https://cdn.openbsd.org/pub/OpenBSD"


@dataclasses.dataclass
class FetchRequest:
    release: str | None = None
    arch: str = "amd64"
    mirrors: list[str] = dataclasses.field(default_factory=list)
    filename: str | None = None  # default install<XY>.iso; may be a full URL
    signify_key: Path | None = None
    output: Path | None = None  # a directory
    checksum: str | None = None  # Packer iso_checksum forms
    insecure_unsigned: bool = False
    force: bool = False


@dataclasses.dataclass(frozen=True)
class _Fetch:
    """One fetch's request and the means every step of it uses (cache, download options,
    progress, the HTTP session opened on first use)."""

    req: FetchRequest
    cache: MediaCache
    options: dl.Options
    progress: Progress
    get_session: _GetSession


@dataclasses.dataclass
class FetchResult:
    path: Path  # the verified file the user asked for (output or cache)
    cache_path: Path
    sha256: str
    how: str  # "signify: openbsd-76-base.pub, key ... -> SHA256 -> install76.iso OK"
    from_cache: bool
    warnings: list[str]
    bytes_fetched: int = 0
    resumed_from: int = 0
    url: str | None = None
    #: snapshots: the snapshot's BUILDINFO (verified against the signed SHA256)
    buildinfo: str | None = None

    @property
    def iso_checksum(self) -> str:
        return f"sha256:{self.sha256}"


@dataclasses.dataclass
class _Expected:
    checksum: Checksum | None
    how: str  # verification description, without the trailing " -> file OK"
    warnings: list[str]
    listing: bytes | None = None  # the verified SHA256 (signify only)


def fetch(
    req: FetchRequest,
    *,
    cache: MediaCache | None = None,
    options: dl.Options | None = None,
    progress: Progress | None = None,
    session: requests.Session | None = None,
) -> FetchResult:
    cache = cache or MediaCache()
    options = options or dl.Options()
    progress = progress or NullProgress()
    filename, urls = _resolve_urls(req)
    _session = session
    created_session = False

    def get_session() -> requests.Session:
        nonlocal _session, created_session
        if _session is None:
            _session, created_session = dl.new_session(), True
        return _session

    fetch = _Fetch(req, cache, options, progress, get_session)
    try:
        expected = _expected_checksum(fetch, filename)
        job = job_key(expected.checksum, urls[0])

        def waiting(lock: Path) -> None:
            progress.note(f"waiting for another packwrap fetching {filename} (lock {lock})")

        with cache.lock(job, on_wait=waiting):
            cached = _cached_copy(cache, expected.checksum, filename, options)
            if cached is not None:
                sha256 = cached.parent.name
                cache_path, fetched, resumed, url = cached, 0, 0, None
            else:
                cache_path, sha256, fetched, resumed, url = _download_verified(
                    fetch, filename, urls, expected.checksum
                )
        buildinfo = None
        if req.release == "snapshots" and expected.listing is not None:
            buildinfo = _snapshot_buildinfo(fetch, expected.listing)
        path = _place_output(cache_path, req.output, filename, sha256, req.force)
        return FetchResult(
            buildinfo=buildinfo,
            path=path,
            cache_path=cache_path,
            sha256=sha256,
            how=f"{expected.how} -> {filename} OK",
            from_cache=cached is not None,
            warnings=expected.warnings,
            bytes_fetched=fetched,
            resumed_from=resumed,
            url=url,
        )
    finally:
        if created_session and _session is not None:
            _session.close()


# --------------------------------------------------------------------------- URLs


def _resolve_urls(req: FetchRequest) -> tuple[str, list[str]]:
    mirrors = [m.rstrip("/") for m in (req.mirrors or [DEFAULT_MIRROR])]
    for m in mirrors:
        if not m.startswith(("http://", "https://")):
            raise UsageError(f"--mirror {m}: only http:// and https:// mirrors are supported")
    name = req.filename
    if name and name.startswith(("http://", "https://")):
        return check_filename(name.rstrip("/").rsplit("/", 1)[-1]), [name]
    if req.release:
        from packwrap.media.keys import release_tag

        if not re.fullmatch(r"\d+\.\d+|snapshots", req.release):
            raise UsageError(f"--release {req.release!r}: expected X.Y (e.g. 7.6) or snapshots")
        name = name or f"install{release_tag(req.release)}.iso"
        check_filename(name)
        _check_arch(req.arch)
        return name, [f"{m}/{req.release}/{req.arch}/{name}" for m in mirrors]
    if not name:
        raise UsageError("give --release (OpenBSD media) or --file (any media)")
    return check_filename(name), [f"{m}/{name}" for m in mirrors]


def _check_arch(arch: str) -> None:
    if not arch or "/" in arch or arch.startswith("."):
        raise UsageError(f"--arch {arch!r} is not an architecture name")


def _list_urls(req: FetchRequest, list_name: str) -> list[str]:
    mirrors = [m.rstrip("/") for m in (req.mirrors or [DEFAULT_MIRROR])]
    return [f"{m}/{req.release}/{req.arch}/{list_name}" for m in mirrors]


# --------------------------------------------------------------------------- expected checksum


def _expected_checksum(fetch: _Fetch, filename: str) -> _Expected:
    req, progress = fetch.req, fetch.progress
    if req.checksum is not None:
        return _from_checksum_option(fetch, req.checksum, filename)
    if not req.release:
        raise UsageError(
            "media outside an OpenBSD release tree need --checksum (Packer iso_checksum forms)"
        )
    key_src = find_key(req.release, req.signify_key)
    if key_src is None:
        if not req.insecure_unsigned:
            raise no_key_error(req.release)
        return _from_unsigned_list(fetch, filename)
    key = load_public_key(key_src.path)
    if key_src.origin == "blueprint" or key.name != key_file_name(req.release):
        progress.note(f"using signify key {key_src.path}")
    verified: list[bytes] = []

    def read(data: bytes, where: str) -> bytes:
        verified.append(verify_embedded(data, key, where))
        return verified[-1]

    entry, source = _release_list_entry(fetch, "SHA256.sig", filename, read)
    if entry is None:
        raise PackwrapError(f"{filename} is not listed in the signed SHA256", file=source)
    how = f"signify: {key.name}, key {key.keynum_hex} -> SHA256"
    return _Expected(entry, how, [], listing=verified[-1] if verified else None)


def _snapshot_buildinfo(fetch: _Fetch, listing: bytes) -> str:
    """The snapshot's BUILDINFO (which snapshot this is), checked against the signed list."""
    entry = _entry(listing, "BUILDINFO")
    if entry is None:
        raise PackwrapError("BUILDINFO is not listed in the snapshot's signed SHA256")
    source, data = dl.fetch_small(
        fetch.get_session(),
        _list_urls(fetch.req, "BUILDINFO"),
        fetch.options,
        progress=fetch.progress,
    )
    digest = entry.new_hash()
    digest.update(data)
    if digest.hexdigest() != entry.hexdigest:
        raise PackwrapError("BUILDINFO does not match the signed SHA256", file=source)
    return data.decode("utf-8", "replace")


def _release_list_entry(
    fetch: _Fetch, list_name: str, filename: str, read: _ReadList
) -> tuple[Checksum | None, str]:
    """`filename`'s line in the release's checksum list `list_name`, and where it came from.

    `read(data, source)` returns the list's text (for SHA256.sig: after verifying the
    signature, raising when it fails). The cached copy is used when it reads and lists
    the file, so a second fetch needs no network; else the list is fetched from the
    mirrors, read, and cached (not for snapshots, which change daily).
    """
    req = fetch.req
    assert req.release is not None  # only release media have checksum lists
    list_path = fetch.cache.list_path(req.release, req.arch, list_name)
    cacheable = req.release != "snapshots"
    if cacheable and not req.force and list_path.is_file():
        try:
            entry = _entry(read(list_path.read_bytes(), str(list_path)), filename)
        except PackwrapError:
            entry = None  # stale or for another key: fetch a fresh one
        if entry is not None:
            return entry, str(list_path)
    source, data = dl.fetch_small(
        fetch.get_session(), _list_urls(req, list_name), fetch.options, progress=fetch.progress
    )
    message = read(data, source)
    if cacheable:
        from packwrap.atomicfile import atomic_write

        atomic_write(list_path, data, mode=0o644)
    return _entry(message, filename), source


def _entry(message: bytes, filename: str) -> Checksum | None:
    return lookup(parse_checksum_list(message.decode("utf-8", "replace")), filename)


def _from_unsigned_list(fetch: _Fetch, filename: str) -> _Expected:
    warning = (
        f"WARNING: no signify key for OpenBSD {fetch.req.release}; trusting the UNSIGNED SHA256 "
        "(--insecure-unsigned)"
    )
    # Cached like SHA256.sig, but in its own file: a signed fetch never reads it.
    entry, source = _release_list_entry(fetch, "SHA256", filename, lambda data, where: data)
    if entry is None:
        raise PackwrapError(f"{filename} is not listed in SHA256", file=source)
    return _Expected(entry, "UNSIGNED SHA256 (--insecure-unsigned)", [warning])


def _from_checksum_option(fetch: _Fetch, checksum_option: str, filename: str) -> _Expected:
    def read_text(location: str) -> str:
        if location.startswith(("http://", "https://")):
            _, data = dl.fetch_small(
                fetch.get_session(), [location], fetch.options, progress=fetch.progress
            )
            return data.decode("utf-8", "replace")
        try:
            return Path(location).expanduser().read_text(errors="replace")
        except OSError as exc:
            raise PackwrapError(
                f"cannot read checksum file: {exc.strerror}", file=location
            ) from None

    checksum = parse_iso_checksum(checksum_option, filename=filename, read_text=read_text)
    if checksum is None:
        return _Expected(
            None,
            "checksum: none (NOT verified)",
            ["WARNING: --checksum none: the file is NOT verified"],
        )
    warnings = []
    if fetch.req.release:
        warnings.append("note: --checksum given, signify was not used")
    return _Expected(checksum, f"checksum: {checksum} (--checksum)", warnings)


# --------------------------------------------------------------------------- cache + download


def hash_file(path: Path, algos: list[str], chunk: int = 1 << 20) -> dict[str, str]:
    hashes = {a: hashlib.new(a) for a in algos}
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb") as f:
        while n := f.readinto(buf):
            for h in hashes.values():
                h.update(view[:n])
    return {a: h.hexdigest() for a, h in hashes.items()}


def _cached_copy(
    cache: MediaCache, expected: Checksum | None, filename: str, options: dl.Options
) -> Path | None:
    """A cached file is trusted only after re-hashing it (a hard link may have been edited)."""
    if expected is None:
        return None
    path = cache.lookup(expected, filename)
    if path is None:
        return None
    algos = sorted({expected.algo, "sha256"})
    digests = hash_file(path, algos, options.chunk_size)
    if digests[expected.algo] == expected.hexdigest and digests["sha256"] == path.parent.name:
        return path
    cache.discard(path)  # corrupted: fetch it again
    return None


def _download_verified(
    fetch: _Fetch, filename: str, urls: list[str], expected: Checksum | None
) -> tuple[Path, str, int, int, str]:
    cache, options, progress = fetch.cache, fetch.options, fetch.progress
    algos = sorted({"sha256"} | ({expected.algo} if expected else set()))
    part = cache.partial_path(job_key(expected, urls[0]), filename)
    for round_ in (1, 2):
        result = dl.download(
            fetch.get_session(),
            urls,
            part,
            algos,
            options,
            progress=progress,
            cross_url_resume=expected is not None,
        )
        actual = result.digests[expected.algo] if expected else None
        if expected is None or actual == expected.hexdigest:
            break
        # Never keep a file that failed its check: it would poison the next resume.
        dl._Partial(part, algos).remove()
        if result.spliced_sources and round_ == 1:
            progress.note(f"{filename}: checksum mismatch after a resume; downloading it whole")
            continue
        raise PackwrapError(
            f"checksum mismatch for {filename} from {result.url}: expected "
            f"{expected.algo}:{expected.hexdigest}, got {expected.algo}:{actual}"
        )
    sha256 = result.digests["sha256"]
    cache_path = cache.store(part, sha256, filename, expected)
    with contextlib.suppress(FileNotFoundError):
        part.with_name(part.name + ".json").unlink()
    with contextlib.suppress(OSError):
        part.parent.rmdir()
    return cache_path, sha256, result.bytes_fetched, result.resumed_from, result.url


# --------------------------------------------------------------------------- output


def _place_output(
    cache_path: Path, output: Path | None, filename: str, sha256: str, force: bool
) -> Path:
    if output is None:
        return cache_path
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output}: not a directory")
    output.mkdir(parents=True, exist_ok=True)
    dest = output / filename
    if dest.exists() or dest.is_symlink():
        try:
            if os.path.samefile(dest, cache_path):
                return dest
        except OSError:
            pass
        if not force and not _fetched_before(dest, cache_path):
            if dest.is_file() and hash_file(dest, ["sha256"])["sha256"] == sha256:
                return dest  # the same verified content is already there
            raise PackwrapError(
                "exists and differs from the verified file; use --force to replace it",
                file=str(dest),
            )
    tmp = output / f".{filename}.packwrap-tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        _link_or_copy(cache_path, tmp)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return dest


def _fetched_before(dest: Path, cache_path: Path) -> bool:
    """`dest` is an earlier fetch's link to a cached copy (e.g. yesterday's snapshot): the
    cache keeps it, so replacing the link loses nothing of the user's."""
    for other in cache_path.parent.parent.glob(f"*/{cache_path.name}"):
        with contextlib.suppress(OSError):
            if os.path.samefile(dest, other):
                return True
    return False


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard link (no copy); across file systems a reflink, then a real copy."""
    try:
        os.link(src, dst)
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise PackwrapError(f"cannot link {src} to {dst}: {exc.strerror}") from None
    try:
        _reflink(src, dst)
        return
    except OSError:
        with contextlib.suppress(OSError):
            dst.unlink()
    import shutil

    try:
        shutil.copyfile(src, dst)
    except OSError as exc:
        if exc.errno in dl.DISK_FULL:
            raise dl.DiskFull(f"disk full copying {src} to {dst}") from None
        raise PackwrapError(f"cannot copy {src} to {dst}: {exc.strerror}") from None


def _reflink(src: Path, dst: Path) -> None:
    import fcntl

    ficlone = 0x40049409  # Linux FICLONE ioctl (btrfs, xfs, ...)
    with open(src, "rb") as s, open(dst, "wb") as d:
        fcntl.ioctl(d.fileno(), ficlone, s.fileno())
