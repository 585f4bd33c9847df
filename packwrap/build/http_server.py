"""The docroot HTTP server the guest installs from: regular files only, nothing else.

Serves, in order, an overlay directory (generated files), then http_content
(a path -> text map), then the docroot. It answers GET and HEAD only, ignores the
query string (OpenBSD's installer appends `?path=7.6/amd64`), lists nothing, and
refuses any path that is not plainly inside a root: `..` segments in any encoding,
NUL bytes, backslashes, and symlinks that resolve outside the root are all 404.
Every request is logged (method, path, status, bytes); 404s loudly, because a
missing file is the usual reason an unattended install stops.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import io
import os
import random
import shutil
import socket
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from packwrap.atomicfile import PRIVATE, atomic_write
from packwrap.errors import PackwrapError

LogFn = Callable[[str], None]


def listener_family(bind: str, protocol: str = "tcp") -> socket.AddressFamily:
    """http_network_protocol: "tcp" listens in the bind address's family; "tcp4" and
    "tcp6" only in theirs, so the bind address must be of that family."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    wanted = {"tcp4": socket.AF_INET, "tcp6": socket.AF_INET6}.get(protocol, family)
    if wanted != family:
        kind = "IPv6" if wanted == socket.AF_INET6 else "IPv4"
        raise PackwrapError(
            f"http_network_protocol {protocol!r} listens on {kind} only; the HTTP server's "
            f"address {bind} is not an {kind} address"
        )
    return family


def requested_bind_address(config: Mapping[str, Any]) -> str | None:
    """Where the template asks the server to listen: http_bind_address, or the first
    IPv4 address of http_interface (one-line error if it has none); None: unasked."""
    if config.get("http_bind_address"):
        return str(config["http_bind_address"])
    if config.get("http_interface"):
        from packwrap.build.host_interface import interface_ipv4

        return interface_ipv4(str(config["http_interface"]), "http_interface")
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # SO_REUSEADDR: a pinned port in TIME_WAIT from the last build is reusable at once;
    # on Linux a port another socket *listens* on still fails to bind.
    allow_reuse_address = True
    block_on_close = False

    def __init__(
        self,
        addr: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        family: socket.AddressFamily,
    ) -> None:
        self.address_family = family
        super().__init__(addr, handler, bind_and_activate=False)
        try:
            if family == socket.AF_INET6:  # tcp6: IPv6 only, as Go's listener
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            self.server_bind()
            self.server_activate()
        except BaseException:
            self.server_close()
            raise


class DocrootServer:
    """A started server; `port`, `address`; `shutdown()` frees the port."""

    def __init__(
        self,
        *,
        roots: list[Path],
        content: Mapping[str, str] | None = None,
        bind: str = "127.0.0.1",
        protocol: str = "tcp",
        port_min: int = 8000,
        port_max: int = 9000,
        log: LogFn | None = None,
        warn: LogFn | None = None,
    ):
        self.roots = [Path(r).resolve() for r in roots]
        self.content = {k: v.encode("utf-8") for k, v in (content or {}).items()}
        #: url directory ("pub/OpenBSD/7.6/amd64") -> a directory served there, before the
        #: roots (the cached sets, which are too big to copy into the overlay)
        self.mounts: dict[str, Path] = {}
        self.log = log or (lambda _m: None)
        self.warn = warn or self.log
        self.requests: list[tuple[str, str, int, int]] = []  # for tests and summaries
        self._server = self._bind(bind, listener_family(bind, protocol), port_min, port_max)
        self.address = bind
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll
            name=f"http-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def _bind(self, bind: str, family: socket.AddressFamily, lo: int, hi: int) -> _Server:
        handler = _make_handler(self)
        if lo == hi or hi - lo <= 1:
            candidates = [lo]
        else:
            # Random start like Packer (parallel builds rarely collide), then walk the range.
            span = list(range(lo, hi))
            start = random.randrange(len(span))
            candidates = span[start:] + span[:start]
        last: OSError | None = None
        for port in candidates:
            try:
                return _Server((bind, port), handler, family)
            except OSError as exc:
                last = exc
                if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                    break  # the address itself is wrong: no port will do
        reason = last.strerror if last else "no port"
        rng = f"port {lo}" if len(candidates) == 1 else f"any port in [{lo}, {hi})"
        raise PackwrapError(f"cannot start the HTTP server on {bind}, {rng}: {reason}")

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)

    # -- resolution ----------------------------------------------------------------------

    def resolve(self, raw_path: str) -> tuple[Path | bytes | None, str]:
        """(file path or content bytes or None, decoded url path) for a request path."""
        path = urlsplit(raw_path).path
        decoded = unquote(path, errors="strict")
        if "\x00" in decoded or "\\" in decoded or not decoded.startswith("/"):
            return None, decoded
        parts = decoded.split("/")[1:]
        if any(p in ("..", ".") for p in parts):
            return None, decoded
        if decoded.endswith(".pkr.in"):
            return None, decoded  # template sources: the rendered file is what is served
        if decoded in self.content:
            return self.content[decoded], decoded
        rel = "/".join(p for p in parts if p)
        if not rel:
            return None, decoded  # "/" -> no listing
        for prefix, directory in self.mounts.items():
            if rel.startswith(prefix + "/"):
                return _file_under_root(directory.resolve(), rel[len(prefix) + 1 :]), decoded
        for root in self.roots:
            real = _file_under_root(root, rel)
            if real is not None:
                return real, decoded
        return None, decoded


def _file_under_root(root: Path, rel: str) -> Path | None:
    """`rel` under `root` when it is a file there (no way out through a symlink)."""
    try:
        real = (root / rel).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return real if real.is_relative_to(root) and real.is_file() else None


def _make_handler(server: DocrootServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "packwrap"
        sys_version = ""
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # we log our own line per request

        def _serve(self, head: bool) -> None:
            try:
                target, shown = server.resolve(self.path)
            except (UnicodeDecodeError, ValueError):
                target, shown = None, self.path
            if target is None:
                self._send_status(HTTPStatus.NOT_FOUND, shown, head)
                return
            stream: BinaryIO
            if isinstance(target, bytes):
                stream, size = io.BytesIO(target), len(target)
            else:
                try:
                    stream = open(target, "rb")  # noqa: SIM115 - closed below
                    size = os.fstat(stream.fileno()).st_size
                except OSError:
                    self._send_status(HTTPStatus.NOT_FOUND, shown, head)
                    return
            # Logged before answering, so the log line exists when the guest has the file.
            self._record(200, shown, 0 if head else size)
            with stream, contextlib.suppress(OSError):
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                if not head:
                    # streamed: sets can be hundreds of MB
                    shutil.copyfileobj(stream, self.wfile, 1 << 16)

        def _send_status(self, status: HTTPStatus, shown: str, head: bool) -> None:
            body = f"{status.value} {status.phrase}\n".encode()
            self._record(status.value, shown, 0)
            with contextlib.suppress(OSError):
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

        def _record(self, status: int, path: str, size: int) -> None:
            server.requests.append((self.command, path, status, size))
            line = f"HTTP {self.command} {path!r} -> {status} ({size} bytes)"
            if status == 404:
                server.warn(f"{line}: the guest asked for a file the docroot does not have")
            else:
                server.log(line)

        def do_GET(self) -> None:  # noqa: N802
            self._serve(head=False)

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve(head=True)

        def _refuse(self) -> None:
            self._send_status(HTTPStatus.METHOD_NOT_ALLOWED, self.path, head=False)

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse  # noqa: N815

    return Handler


def render_generated_files(
    docroot: Path,
    overlay: Path,
    data: Mapping[str, object],
    render: Callable[[str, Mapping[str, object], str], str] | None = None,
    *,
    pattern: str = "*.pkr.in",
    extension: str = "pkr.in",
    generated: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """Render every docroot file named `pattern` (ending in `.extension`) into overlay,
    without the extension (mode 0600: may hold secrets). The one renderer of generated
    files: the core's `*.pkr.in` and the vmm builder's gen_files_* both come here.
    `render` defaults to the Go-template renderer of boot commands.

    `generated` (docroot-relative posix path -> text: a blueprint project's files that are
    out of date, rendered for the build's variables) stands in for docroot files, whether
    they exist or not: one named `pattern` is rendered like the others, any other is put
    in the overlay as it is. Returns (generated, source) paths relative to the docroot,
    for the log."""
    if render is None:
        from packwrap.build import bootcommand

        def render(text: str, values: Mapping[str, object], what: str) -> str:
            return bootcommand.render(text, values, what=what)

    generated = dict(generated or {})
    names = {
        src.relative_to(docroot).as_posix()
        for src in docroot.rglob("*")
        if src.is_file() and fnmatch.fnmatchcase(src.name, pattern)
    }
    names |= {rel for rel in generated if fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], pattern)}
    made = []
    for rel in sorted(names):
        src = docroot / rel
        text = generated.get(rel)
        source = rel if text is None else f"{rel} as the variables render it now"
        if text is None:
            text = src.read_text(encoding="utf-8")
        out = rel[: -len(extension) - 1]
        atomic_write(overlay / out, render(text, data, str(src)), mode=PRIVATE)
        made.append((out, source))
    for rel, text in sorted(generated.items()):
        if rel not in names:
            atomic_write(overlay / rel, text, mode=PRIVATE)
            made.append((rel, f"{rel} as the variables render it now"))
    return made
