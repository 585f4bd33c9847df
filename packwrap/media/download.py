"""Streaming HTTP download with one-pass hashing, validated resume, retries and mirrors.

Every byte is hashed as it is written (no second read of the file). The one exception
is resuming a partial file left by an earlier run: its bytes are hashed once before the
transfer continues, because a hash state cannot be saved across processes.

Resume is validated: the partial file's metadata (.part.json) keeps the URL, ETag,
Last-Modified and size; a resumed request sends `Range` + `If-Range`. A 200 answer
(server ignored Range, or the file changed) or a Content-Range/size/ETag that does not
match means: start over from byte 0. The caller's final checksum check is the last guard,
so a spliced file can never be accepted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packwrap.atomicfile import atomic_write
from packwrap.errors import Cancelled, PackwrapError
from packwrap.media.hashing import StreamHasher
from packwrap.media.progress import NullProgress, Progress, human_bytes

if TYPE_CHECKING:
    from collections.abc import Iterator

    import requests

USER_AGENT = "packwrap-fetch-iso"
DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}
HTML_SUFFIXES = (".html", ".htm")
# Received in 256 KiB chunks, written in 32 KiB slices. A write() lets ext4 (Linux 6.x)
# allocate page-cache folios as large as the write. Measured on this project's ballooned
# VMs: 32 KiB writes are steady, 64 KiB and larger cost 2-6x the system time in runs that
# follow a small-write workload (bench/README.md: 512 MiB in 0.16-0.26 s vs 0.13-0.79 s);
# likely because folios up to order 3 (PAGE_ALLOC_COSTLY_ORDER) come from per-CPU lists.
WRITE_SLICE = 32 << 10


@dataclasses.dataclass
class Options:
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    attempts: int = 4  # per mirror, for transient failures (drops, timeouts, 5xx)
    backoff: float = 1.0  # first pause between attempts; doubles, capped at max_backoff
    max_backoff: float = 15.0
    chunk_size: int = 256 << 10  # a drop loses at most one chunk; 8 of them in flight


@dataclasses.dataclass
class Result:
    path: Path
    url: str
    size: int
    digests: dict[str, str]
    bytes_fetched: int  # body bytes received over the network by this call
    resumed_from: int  # size of the partial file this call started from (0: fresh)
    spliced_sources: bool  # bytes came from more than one response (resume)


class MirrorFailure(Exception):
    """This mirror cannot deliver the file; `transient` failures are retried first."""

    def __init__(self, reason: str, transient: bool, got: int = 0):
        super().__init__(reason)
        self.reason, self.transient = reason, transient
        self.got = got  # body bytes this request delivered before it failed


class DiskFull(PackwrapError):
    pass


class AllMirrorsFailed(PackwrapError):
    pass


def new_session() -> requests.Session:

    import requests

    s = requests.Session()
    s.headers["User-Agent"] = USER_AGENT
    s.headers["Accept-Encoding"] = "identity"  # hash what the mirror stores, not a gzip of it
    s.trust_env = True
    return s


def looks_like_html(first_bytes: bytes) -> bool:
    head = first_bytes[:512].lstrip().lower()
    return head.startswith(b"<!doctype html") or head.startswith(b"<html")


def _is_html_type(resp: requests.Response, filename: str) -> bool:
    ctype = resp.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    return ctype in ("text/html", "application/xhtml+xml") and not filename.lower().endswith(
        HTML_SUFFIXES
    )


def _status_failure(resp: requests.Response) -> MirrorFailure:
    reason = f"HTTP {resp.status_code} {resp.reason or ''}".strip()
    return MirrorFailure(reason, transient=resp.status_code in TRANSIENT_STATUS)


def _transport_errors() -> tuple[type[BaseException], ...]:

    import requests
    import urllib3.exceptions

    return (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
        urllib3.exceptions.HTTPError,
        ConnectionError,
        TimeoutError,
    )


def _request_errors() -> type[BaseException]:

    import requests

    return requests.exceptions.RequestException


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300]


def _describe(exc: BaseException) -> str:

    import requests

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, requests.exceptions.ReadTimeout | TimeoutError) or "timed out" in str(exc):
        return "read timeout"
    if isinstance(exc, requests.exceptions.ConnectionError) and "Connection refused" in str(exc):
        return "connection refused"
    return "connection dropped"


def _is_transient(why: str) -> bool:
    """Worth retrying on the same mirror? Not a refused connection: nothing listens there,
    so go on to the next mirror at once (curl and wget do not retry it by default)."""
    return why != "connection refused"


# --------------------------------------------------------------------------- small files


def fetch_small(
    session: requests.Session,
    urls: list[str],
    options: Options,
    *,
    max_bytes: int = 4 << 20,
    progress: Progress | None = None,
) -> tuple[str, bytes]:
    """Fetch a small file (SHA256.sig, a SUMS file) into memory; mirrors in order."""
    progress = progress or NullProgress()
    failures: list[str] = []
    transport = _transport_errors()
    for url in urls:
        name = url.rsplit("/", 1)[-1]
        for attempt in range(1, options.attempts + 1):
            try:
                with session.get(
                    url, stream=True, timeout=(options.connect_timeout, options.read_timeout)
                ) as resp:
                    if resp.status_code != 200:
                        raise _status_failure(resp)
                    if _is_html_type(resp, name):
                        raise MirrorFailure("returned an HTML page (Content-Type text/html)", False)
                    data = bytearray()
                    for chunk in resp.iter_content(64 << 10):
                        data += chunk
                        if len(data) > max_bytes:
                            raise MirrorFailure(f"larger than {human_bytes(max_bytes)}", False)
                    if looks_like_html(bytes(data[:512])):
                        raise MirrorFailure("returned an HTML page instead of the file", False)
                    return url, bytes(data)
            except MirrorFailure as exc:
                if exc.transient and attempt < options.attempts:
                    _pause(options, attempt, progress, f"{url}: {exc.reason}")
                    continue
                failures.append(f"{url}: {exc.reason}" + _attempts(attempt, exc.transient))
                break
            except transport as exc:
                why = _describe(exc)
                transient = _is_transient(why)
                if transient and attempt < options.attempts:
                    _pause(options, attempt, progress, f"{url}: {why}")
                    continue
                failures.append(f"{url}: {why}" + _attempts(attempt, transient))
                break
            except _request_errors() as exc:  # a bad URL, too many redirects, ...
                failures.append(f"{url}: {_one_line(exc)}")
                break
    name = urls[0].rsplit("/", 1)[-1] if urls else "file"
    raise AllMirrorsFailed(f"could not fetch {name} from any mirror: " + "; ".join(failures))


def _attempts(n: int, transient: bool) -> str:
    return f" (after {n} attempts)" if transient and n > 1 else ""


def _pause(options: Options, attempt: int, progress: Progress, why: str) -> None:
    delay = min(options.backoff * (2 ** (attempt - 1)), options.max_backoff)
    progress.note(f"{why}; retrying in {delay:.1f} s (attempt {attempt + 1}/{options.attempts})")
    time.sleep(delay)


# --------------------------------------------------------------------------- large files


@dataclasses.dataclass
class _Meta:
    url: str = ""
    etag: str | None = None
    last_modified: str | None = None
    total: int | None = None

    @classmethod
    def load(cls, path: Path) -> _Meta | None:
        try:
            raw = json.loads(path.read_text())
            return cls(**{k: raw.get(k) for k in ("url", "etag", "last_modified", "total")})
        except (OSError, ValueError, TypeError):
            return None

    def save(self, path: Path) -> None:
        atomic_write(path, json.dumps(dataclasses.asdict(self)))


class _Partial:
    """The partial file plus running hashes of exactly the bytes it holds."""

    def __init__(self, path: Path, algos: list[str], chunk_size: int = 256 << 10):
        self.path = path
        self.meta_path = path.with_name(path.name + ".json")
        self.algos = algos
        self.chunk_size = chunk_size
        self.hasher = StreamHasher(algos, chunk_size)
        self.size = 0
        self.started_at = 0  # offset where the last response's body began
        self.fh: Any = None

    def open_existing(self) -> int:
        """Adopt a partial file from an earlier run: hash its bytes once (unavoidable)."""
        self._new_hasher()
        try:
            with open(self.path, "rb") as f:
                while True:
                    buf = self.hasher.buffer()
                    n = f.readinto(buf)
                    if not n:
                        self.hasher.release(buf)
                        break
                    self.hasher.submit(buf, n)
                    self.size += n
        except FileNotFoundError:
            pass
        return self.size

    def _new_hasher(self) -> None:
        self.hasher.close()
        self.hasher = StreamHasher(self.algos, self.chunk_size)
        self.size = 0

    def reset(self) -> None:
        self.close()
        self._new_hasher()
        self._unlink()  # not truncated: see _file()

    def _file(self) -> Any:
        if self.fh is None:
            self.fh = open(self.path, "ab")  # noqa: SIM115 -- kept open across chunks
            # Bytes past what we hashed (a write torn by an error) are cut off, and only
            # then: after a truncate, ext4 (auto_da_alloc) flushes the whole file to disk
            # on close, 0.12-0.16 s for 512 MiB here (bench/README.md).
            if os.fstat(self.fh.fileno()).st_size != self.size:
                self.fh.truncate(self.size)
        return self.fh

    def append(self, data: bytes) -> None:
        self.append_buffer(data, len(data))

    def append_buffer(self, buf: bytes | bytearray, n: int) -> None:
        """Write buf[:n], then hash it on the hash thread while we receive the next chunk."""
        fh = self._file()
        try:
            with memoryview(buf)[:n] as view:
                for start in range(0, n, WRITE_SLICE):
                    fh.write(view[start : start + WRITE_SLICE])
        except OSError as exc:
            self._disk_error(exc)
        self.hasher.submit(buf, n)
        self.size += n

    def digests(self) -> dict[str, str]:
        return self.hasher.hexdigests()

    def close(self) -> None:
        if self.fh is not None:
            fh, self.fh = self.fh, None
            try:
                fh.close()
            except OSError as exc:
                self._disk_error(exc)

    def _disk_error(self, exc: OSError) -> None:
        if exc.errno in DISK_FULL:
            raise DiskFull(
                f"disk full writing {self.path} after {human_bytes(self.size)} "
                f"({exc.strerror}); the partial download was removed"
            ) from None
        raise PackwrapError(f"cannot write {self.path}: {exc.strerror}") from None

    def remove(self) -> None:
        if self.fh is not None:
            with contextlib.suppress(OSError):
                self.fh.close()
            self.fh = None
        self._unlink()

    def _unlink(self) -> None:
        for p in (self.path, self.meta_path):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def download(
    session: requests.Session,
    urls: list[str],
    part_path: Path,
    algos: list[str],
    options: Options,
    *,
    progress: Progress | None = None,
    cross_url_resume: bool = False,
) -> Result:
    """Download to `part_path`, hashing with `algos` on the way; mirrors tried in order.

    `cross_url_resume`: a partial file fetched from another mirror may be continued
    (only safe when the caller checks an expected checksum afterwards).
    """
    progress = progress or NullProgress()
    filename = part_path.name.removesuffix(".part")
    part = _Partial(part_path, algos, options.chunk_size)
    resumed_from = part.open_existing() if _Meta.load(part.meta_path) else 0
    if not resumed_from and part_path.exists():
        part.reset()  # a partial without metadata cannot be validated
    fetched = 0
    failures: list[str] = []
    try:
        for url in urls:
            attempt = 0
            restarts = 0
            while True:
                attempt += 1
                meta = _Meta.load(part.meta_path)  # what the partial file came from, if any
                try:
                    got, complete = _one_request(
                        session, url, part, meta, options, progress, filename, cross_url_resume
                    )
                    fetched += got
                    if complete:
                        part.close()
                        return Result(
                            path=part_path,
                            url=url,
                            size=part.size,
                            digests=part.digests(),
                            bytes_fetched=fetched,
                            resumed_from=resumed_from,
                            spliced_sources=part.started_at > 0,
                        )
                except _Restart as r:
                    fetched += r.got
                    restarts += 1
                    if restarts > 3:
                        failures.append(f"{url}: {r.reason}, repeatedly")
                        break
                    progress.note(f"{url}: {r.reason}; starting over")
                    part.reset()
                    attempt -= 1
                    continue
                except MirrorFailure as exc:
                    fetched += exc.got
                    if exc.transient and attempt < options.attempts:
                        _pause(options, attempt, progress, f"{url}: {exc.reason}")
                        continue
                    failures.append(f"{url}: {exc.reason}" + _attempts(attempt, exc.transient))
                    break
                finally:
                    part.close()
    except KeyboardInterrupt:
        part.close()
        raise Cancelled(
            f"interrupted; partial download kept for resume: {part_path} ({human_bytes(part.size)})"
        ) from None
    except DiskFull:
        part.remove()
        raise
    finally:
        part.hasher.close()
    raise AllMirrorsFailed(f"could not download {filename} from any mirror: " + "; ".join(failures))


def _body_chunks(
    resp: requests.Response, hasher: StreamHasher, chunk_size: int
) -> Iterator[tuple[bytes | bytearray, int]]:
    """Yield (buffer, n) with the body, read into the hasher's reusable buffers.

    http.client's readinto fills a pool buffer directly (no allocation per chunk);
    it follows Content-Length and chunked encoding. A content-encoded body (which we
    did not ask for) goes through urllib3's decoding read1 instead.
    """
    fp = getattr(resp.raw, "_fp", None)
    encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
    if fp is None or encoded or not hasattr(fp, "readinto"):
        read1 = resp.raw.read1
        while chunk := read1(chunk_size):
            yield chunk, len(chunk)
        return
    while True:
        buf = hasher.buffer()
        try:
            n = fp.readinto(buf)
        except BaseException:
            hasher.release(buf)
            raise
        if not n:
            hasher.release(buf)
            return
        yield buf, n


class _Restart(Exception):
    def __init__(self, reason: str, got: int = 0):
        super().__init__(reason)
        self.reason, self.got = reason, got


def _content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """'bytes 100-199/1000' -> (100, 199, 1000); '/*' -> total None."""
    if not value or not value.startswith("bytes "):
        return None
    try:
        span, _, total = value[6:].partition("/")
        first, _, last = span.partition("-")
        return int(first), int(last), (None if total.strip() == "*" else int(total))
    except ValueError:
        return None


def _one_request(
    session: requests.Session,
    url: str,
    part: _Partial,
    meta: _Meta | None,
    options: Options,
    progress: Progress,
    filename: str,
    cross_url_resume: bool,
) -> tuple[int, bool]:
    """One GET; appends to `part`. -> (bytes received, complete?)."""
    transport = _transport_errors()
    offset = part.size
    same_url = meta is not None and meta.url == url
    headers: dict[str, str] = {}
    if offset and not same_url and not cross_url_resume:
        raise _Restart("the partial file came from another URL")
    if offset and meta is not None and meta.total is not None and offset >= meta.total:
        if offset == meta.total:
            part.started_at = offset
            return 0, True  # an earlier run finished the transfer; the caller verifies
        raise _Restart("the partial file is larger than the file")
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if same_url and meta is not None:
            validator = meta.etag if meta.etag and not meta.etag.startswith("W/") else None
            validator = validator or meta.last_modified
            if validator:
                headers["If-Range"] = validator
    got = 0
    try:
        with session.get(
            url,
            headers=headers,
            stream=True,
            timeout=(options.connect_timeout, options.read_timeout),
        ) as resp:
            status = resp.status_code
            if status == 416 and offset:
                raise _Restart("the server rejected the resume range")
            if status not in (200, 206):
                raise _status_failure(resp)
            if _is_html_type(resp, filename):
                raise MirrorFailure("returned an HTML page (Content-Type text/html)", False)
            etag = resp.headers.get("ETag")
            last_modified = resp.headers.get("Last-Modified")
            length = resp.headers.get("Content-Length")
            ok = length and length.isascii() and length.isdigit() and len(length) < 20
            length_i = int(length) if length and ok else None
            if status == 206:
                cr = _content_range(resp.headers.get("Content-Range"))
                if cr is None or cr[0] != offset:
                    raise _Restart("the server answered a different range")
                total = cr[2]
                known = meta.total if meta else None
                if known is not None and total is not None and total != known:
                    raise _Restart(f"the file size changed ({known} -> {total} bytes)")
                if same_url and meta and meta.etag and etag and etag != meta.etag:
                    raise _Restart("the file changed on the server (new ETag)")
            else:
                if offset:
                    progress.note(
                        f"{url}: server sent the whole file (Range ignored or file changed); "
                        "starting over"
                    )
                    part.reset()
                    offset = 0
                total = length_i
            new_meta = _Meta(url=url, etag=etag, last_modified=last_modified, total=total)
            new_meta.save(part.meta_path)
            part.started_at = offset
            progress.start(filename, total, offset)
            first = offset == 0
            try:
                for buf, n in _body_chunks(resp, part.hasher, options.chunk_size):
                    if first:
                        first = False
                        head = bytes(memoryview(buf)[: min(n, 512)])
                        if looks_like_html(head) and not filename.lower().endswith(HTML_SUFFIXES):
                            part.reset()
                            raise MirrorFailure("returned an HTML page instead of the file", False)
                    part.append_buffer(buf, n)
                    got += n
                    progress.advance(n)
            except transport as exc:
                progress.finish()
                failure = MirrorFailure(
                    f"{_describe(exc)} at {human_bytes(part.size)}"
                    + (f" of {human_bytes(total)}" if total else ""),
                    transient=True,
                    got=got,
                )
                raise failure from None
            progress.finish()
            if total is not None and part.size != total:
                failure = MirrorFailure(
                    f"connection dropped at {human_bytes(part.size)} of {human_bytes(total)}",
                    transient=True,
                    got=got,
                )
                raise failure
            return got, True
    except transport as exc:
        why = _describe(exc)
        raise MirrorFailure(why, transient=_is_transient(why)) from None
    except _request_errors() as exc:  # a bad URL, too many redirects, ...
        raise MirrorFailure(_one_line(exc), transient=False) from None
