"""Test helpers for fetch-iso: a mirror tree in tmp, real signify keys, a faulty HTTP server.

Everything here is real: keys and embedded signatures come from the `signify-openbsd`
binary, and the server is a ThreadingHTTPServer on 127.0.0.1 that the tests steer
(cut a body at an offset, ignore Range, answer with an HTML page or 404/500, stall,
change a file between requests). The server only ever binds to loopback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import select
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SIGNIFY = shutil.which("signify-openbsd") or shutil.which("signify")


# --------------------------------------------------------------------------- mirror tree


def deterministic_bytes(size: int, seed: str = "packwrap") -> bytes:
    """Pseudo-random, reproducible content (fast: SHAKE-256 stream)."""
    return hashlib.shake_256(seed.encode()).digest(size)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_sha256_list(directory: Path, names: list[str] | None = None) -> Path:
    """Write `SHA256` in OpenBSD's BSD-tagged format for the files in `directory`."""
    if names is None:
        names = sorted(
            p.name for p in directory.iterdir() if p.is_file() and not p.name.startswith("SHA256")
        )
    lines = []
    for name in names:
        h = hashlib.sha256()
        with open(directory / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        lines.append(f"SHA256 ({name}) = {h.hexdigest()}\n")
    path = directory / "SHA256"
    path.write_text("".join(lines))
    return path


@dataclasses.dataclass
class Keys:
    pub: Path
    sec: Path

    @property
    def keynum(self) -> str:
        import base64

        raw = base64.b64decode(self.pub.read_text().splitlines()[1])
        return raw[2:10].hex()


def make_keys(directory: Path, name: str = "openbsd-76-base", comment: str = "") -> Keys:
    """Generate an unencrypted signify key pair with the real binary."""
    if SIGNIFY is None:
        raise RuntimeError("signify-openbsd is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    pub, sec = directory / f"{name}.pub", directory / f"{name}.sec"
    for p in (pub, sec):
        p.unlink(missing_ok=True)
    subprocess.run(
        [SIGNIFY, "-G", "-n", "-p", str(pub), "-s", str(sec), "-c", comment or name],
        check=True,
        capture_output=True,
    )
    return Keys(pub, sec)


def sign_embedded(keys: Keys, message: Path, sigfile: Path) -> Path:
    """`signify -S -e`: SHA256.sig = comment + signature line + the message itself."""
    sigfile.unlink(missing_ok=True)
    subprocess.run(
        [SIGNIFY, "-S", "-e", "-s", str(keys.sec), "-m", str(message), "-x", str(sigfile)],
        check=True,
        capture_output=True,
    )
    return sigfile


def signify_check(pub: Path, sigfile: Path, files: list[str], cwd: Path) -> bool:
    """What `signify-openbsd -C` says about `files` (run in `cwd`): True if all OK."""
    proc = subprocess.run(
        [SIGNIFY, "-C", "-p", str(pub), "-x", str(sigfile), *files],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    return proc.returncode == 0


@dataclasses.dataclass
class Mirror:
    """A mirror tree: root/<release>/<arch>/{files, SHA256, SHA256.sig}."""

    root: Path
    release: str
    arch: str
    keys: Keys

    @property
    def dir(self) -> Path:
        return self.root / self.release / self.arch

    def path(self, name: str) -> Path:
        return self.dir / name

    def sha256(self, name: str) -> str:
        return sha256_hex(self.path(name).read_bytes())

    def resign(self) -> None:
        """Rewrite SHA256 for the current files and sign it again."""
        write_sha256_list(self.dir)
        sign_embedded(self.keys, self.dir / "SHA256", self.dir / "SHA256.sig")


def build_mirror(
    root: Path,
    files: dict[str, bytes | int],
    *,
    release: str = "7.6",
    arch: str = "amd64",
    keys: Keys | None = None,
    keydir: Path | None = None,
) -> Mirror:
    """Build an OpenBSD-like mirror tree; an int in `files` means that many bytes."""
    d = root / release / arch
    d.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = deterministic_bytes(content, name) if isinstance(content, int) else content
        (d / name).write_bytes(data)
    if keys is None:
        xy = release.replace(".", "")
        keys = make_keys(keydir or root.parent / "keys", f"openbsd-{xy}-base")
    mirror = Mirror(root, release, arch, keys)
    mirror.resign()
    return mirror


# --------------------------------------------------------------------------- HTTP server


@dataclasses.dataclass
class Rule:
    """How the server misbehaves for one URL path (None fields: behave normally).

    `times` counts how many requests the rule applies to (then it is spent);
    -1 means forever.
    """

    status: int | None = None  # answer with this status and a small HTML body
    html: bool = False  # answer 200 with an HTML error page
    cut_at: int | None = None  # close the connection after this body offset...
    cut_reset: bool = False  # ...with an RST (unread data is lost) instead of a FIN
    stall_at: int | None = None  # stop sending at this body offset...
    stall_seconds: float = 30.0  # ...for this long (interruptible by stop())...
    resume: threading.Event | None = None  # ...or until this event is set
    ignore_range: bool = False  # always send the whole file with 200
    # lie about the size: the Content-Length header for a body of n bytes (the body sent
    # is still the real one, then the connection closes: HTTP/1.0)
    content_length: Callable[[int], str] | None = None
    times: int = -1
    before: Callable[[], None] | None = None  # run before serving (e.g. change the file)

    def take(self) -> bool:
        if self.times == 0:
            return False
        if self.times > 0:
            self.times -= 1
        return True


@dataclasses.dataclass
class RequestLog:
    path: str
    range: str | None
    if_range: str | None
    status: int
    body_start: int
    bytes_sent: int


class MirrorServer:
    """A controllable mirror on 127.0.0.1:<free port>; use as a context manager."""

    def __init__(self, root: Path, *, use_etag: bool = True, use_last_modified: bool = True):
        self.root = Path(root)
        self.rules: dict[str, list[Rule]] = {}
        self.log: list[RequestLog] = []
        self.use_etag = use_etag
        self.use_last_modified = use_last_modified
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._url = ""
        self._active = 0  # requests being served (see wait_idle)

    # -- control
    @property
    def url(self) -> str:
        assert self._url, "server not started"
        return self._url  # kept after stop(): requests to it then fail (connection refused)

    def add_rule(self, path: str, rule: Rule) -> Rule:
        with self._lock:
            self.rules.setdefault(path, []).append(rule)
        return rule

    def clear_rules(self) -> None:
        with self._lock:
            self.rules.clear()

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no request is being served, so the log is complete."""
        wait_for(lambda: self._active == 0, timeout)

    def bytes_sent(self, path: str) -> int:
        self.wait_idle()
        with self._lock:
            return sum(r.bytes_sent for r in self.log if r.path == path)

    def requests_for(self, path: str) -> list[RequestLog]:
        self.wait_idle()
        with self._lock:
            return [r for r in self.log if r.path == path]

    def start(self) -> MirrorServer:
        handler = _make_handler(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        host, port = self._httpd.server_address[:2]
        self._url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- used by the handler
    def _rule_for(self, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules.get(path, []):
                if rule.take():
                    return rule
        return None

    def _record(self, entry: RequestLog) -> None:
        with self._lock:
            self.log.append(entry)


def file_etag(path: Path) -> str:
    st = path.stat()
    return f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'


def _make_handler(server: MirrorServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: simple and honest

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # keep pytest output clean; the RequestLog has what tests need

        def handle_one_request(self) -> None:
            with server._lock:
                server._active += 1
            try:
                super().handle_one_request()
            finally:
                with server._lock:
                    server._active -= 1

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

        def _serve(self, head: bool) -> None:
            path = self.path.split("?", 1)[0]
            rng = self.headers.get("Range")
            if_range = self.headers.get("If-Range")
            rule = server._rule_for(path)
            if rule and rule.before:
                rule.before()
            if rule and rule.status:
                return self._error(path, rule.status, rng, if_range, head)
            if rule and rule.html:
                return self._html(path, 200, rng, if_range, head)
            fs_path = (server.root / path.lstrip("/")).resolve()
            if server.root.resolve() not in fs_path.parents or not fs_path.is_file():
                return self._error(path, 404, rng, if_range, head)

            size = fs_path.stat().st_size
            etag = file_etag(fs_path)
            mtime = fs_path.stat().st_mtime
            last_modified = self.date_time_string(int(mtime))
            start, status = 0, 200
            honour = rng and not (rule and rule.ignore_range)
            if honour and if_range and if_range not in (etag, last_modified):
                honour = False  # If-Range mismatch: the whole (new) file with 200
            if honour:
                try:
                    unit, spec = rng.split("=", 1)
                    first = int(spec.split("-", 1)[0])
                    assert unit.strip() == "bytes"
                except (ValueError, AssertionError):
                    first = 0
                if first >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    server._record(RequestLog(path, rng, if_range, 416, 0, 0))
                    return
                start, status = first, 206
            length = size - start
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            declared = rule.content_length(length) if rule and rule.content_length else length
            self.send_header("Content-Length", str(declared))
            self.send_header("Accept-Ranges", "bytes")
            if server.use_etag:
                self.send_header("ETag", etag)
            if server.use_last_modified:
                self.send_header("Last-Modified", last_modified)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            self.end_headers()
            sent = 0
            if not head:
                sent = self._send_body(fs_path, start, length, rule)
            server._record(RequestLog(path, rng, if_range, status, start, sent))

        def _send_body(self, fs_path: Path, start: int, length: int, rule: Rule | None) -> int:
            stop_at = start + length
            pause_at = None
            if rule and rule.cut_at is not None and rule.cut_at < stop_at:
                stop_at = max(start, rule.cut_at)
            if rule and rule.stall_at is not None and start <= rule.stall_at < stop_at:
                pause_at = rule.stall_at
            sent = 0
            try:
                with open(fs_path, "rb") as f:
                    offset = start
                    for limit in (pause_at, stop_at):
                        if limit is None:
                            continue
                        if limit > offset:
                            n = self.connection.sendfile(f, offset, limit - offset)
                            sent += n
                            offset += n
                        if limit == pause_at:
                            self.wfile.flush()
                            self._stall(rule.stall_seconds, rule.resume)  # type: ignore[union-attr]
            except (BrokenPipeError, ConnectionResetError, OSError):
                pass
            if stop_at < start + length and rule is not None and rule.cut_reset:
                # A hard close: the client's kernel drops what it has not read yet.
                with contextlib.suppress(OSError):
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                self.close_connection = True
            return sent

        def _stall(self, seconds: float, resume: threading.Event | None) -> None:
            """Send nothing for `seconds`; end early if the client hangs up, on stop(),
            or when `resume` is set."""
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not server._stop.is_set():
                if resume is not None and resume.is_set():
                    return
                readable, _, _ = select.select([self.connection], [], [], 0.05)
                if readable:
                    try:
                        if not self.connection.recv(1, socket.MSG_PEEK):
                            return  # the client closed its end
                    except OSError:
                        return

        def _error(self, path: str, code: int, rng, if_range, head: bool) -> None:
            self._html(path, code, rng, if_range, head)

        def _html(self, path: str, code: int, rng, if_range, head: bool) -> None:
            body = (
                f"<!DOCTYPE html>\n<html><head><title>{code}</title></head>"
                f"<body><h1>Mirror says {code}</h1></body></html>\n"
            ).encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            server._record(RequestLog(path, rng, if_range, code, 0, len(body)))

    return Handler


@contextlib.contextmanager
def serve(root: Path, **kwargs: object) -> Iterator[MirrorServer]:
    server = MirrorServer(root, **kwargs)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def replace_file(path: Path, data: bytes) -> None:
    """Change a mirror file atomically (new inode, new mtime -> new ETag)."""
    tmp = path.with_suffix(path.suffix + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)
