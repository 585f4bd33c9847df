"""The docroot HTTP server, attacked over real loopback sockets with raw request lines.

Requests are written byte for byte (no client library normalises `..` or encodings), and
the server is given a docroot with secrets next to it, symlinks pointing out, a docroot
reached through a symlinked parent, and a sibling directory whose name shares the prefix.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
from pathlib import Path

import pytest

from packwrap.build.http_server import DocrootServer
from packwrap.build.state import State
from packwrap.build.steps.http_server import StepHTTPServer
from tests.state_support import make_state

SECRET = b"TOP-SECRET-outside-the-docroot"


def raw_request(port: int, request_line: bytes, host: str = "127.0.0.1") -> tuple[int, bytes]:
    """(status, body) for one raw request line; HTTP/1.0, so the server closes the socket."""
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(request_line + b"\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body


def get(port: int, target: str | bytes, method: bytes = b"GET") -> tuple[int, bytes]:
    t = target if isinstance(target, bytes) else target.encode()
    return raw_request(port, method + b" " + t + b" HTTP/1.0")


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    real = tmp_path / "real"
    docroot = real / "project" / "http"
    (docroot / "sub").mkdir(parents=True)
    (docroot / "install.conf").write_text("System hostname = t\n")
    (docroot / "sub" / "disklabel").write_text("/ 1G\n")
    (docroot / "sub" / "index.html").write_text("<html>no index pages</html>\n")
    (real / "project" / "secret.txt").write_bytes(SECRET)
    (real / "project" / "http-private").mkdir()  # shares the docroot's name as a prefix
    (real / "project" / "http-private" / "key").write_bytes(SECRET)
    outside_dir = tmp_path / "outside"
    outside_dir.mkdir()
    (outside_dir / "passwd").write_bytes(SECRET)
    os.symlink(real / "project" / "secret.txt", docroot / "link-out")
    os.symlink(outside_dir, docroot / "dir-out")
    os.symlink("../secret.txt", docroot / "relative-out")
    os.symlink("/etc/passwd", docroot / "abs-out")
    os.symlink(docroot / "install.conf", docroot / "link-in")
    os.symlink("sub", docroot / "sublink")
    os.symlink("loop", docroot / "loop")  # a symlink loop
    os.mkfifo(docroot / "fifo")  # a FIFO would block a reader forever
    # the docroot as the user names it: through a symlinked parent directory
    os.symlink(real, tmp_path / "via-link")
    return {"docroot": tmp_path / "via-link" / "project" / "http", "real": docroot}


@pytest.fixture
def server(layout: dict[str, Path]):
    srv = DocrootServer(roots=[layout["docroot"]], port_min=0, port_max=0)
    try:
        yield srv
    finally:
        srv.shutdown()


TRAVERSALS = [
    "/../secret.txt",
    "/sub/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/.%2e/secret.txt",
    "/%2e%2e%2fsecret.txt",
    "/%2e%2e%2Fsecret.txt",
    "/%252e%252e/secret.txt",  # double-encoded: decoded once, it names a file "%2e%2e"
    "/%252e%252e%252fsecret.txt",
    "/..%2fsecret.txt",
    "/..%5csecret.txt",
    "/..\\secret.txt",
    "/sub\\..\\..\\secret.txt",
    "/%c0%ae%c0%ae/secret.txt",  # overlong UTF-8 for '.'
    "/%c0%af..%c0%afsecret.txt",  # overlong UTF-8 for '/'
    "/%e0%80%ae%e0%80%ae/secret.txt",
    "/%ff%fe/secret.txt",
    "/install.conf%00.txt",
    "/install.conf%00",
    "/%00/../secret.txt",
    "/../http-private/key",
    "/../../outside/passwd",
    "/link-out",
    "/relative-out",
    "/abs-out",
    "/dir-out/passwd",
    "/loop",
    "/fifo",
    "//etc/passwd",
    "/etc/passwd",
    "/%2fetc%2fpasswd",
    "http://127.0.0.1/../secret.txt",
    "http://evil/%2e%2e/secret.txt",
    "*",
    "secret.txt",
    "../secret.txt",
    "/./secret.txt",
    "/sub/./../../secret.txt",
    "/install.conf/.",
    "/install.conf/..",
]
LISTINGS = ["/", "/sub", "/sub/", "/sublink/", "/dir-out", "/?C=M;O=A", "/.", "/%2e", "//"]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_is_refused(server: DocrootServer, target: str) -> None:
    status, body = get(server.port, target)
    assert status in (400, 404), (target, status)
    assert SECRET not in body
    assert b"root:" not in body


@pytest.mark.parametrize("target", LISTINGS)
def test_nothing_is_listed(server: DocrootServer, target: str) -> None:
    status, body = get(server.port, target)
    assert status == 404, (target, status, body[:80])
    assert b"install.conf" not in body and b"disklabel" not in body


def test_files_inside_are_served_through_the_symlinked_parent(server: DocrootServer) -> None:
    assert get(server.port, "/install.conf") == (200, b"System hostname = t\n")
    assert get(server.port, "/link-in")[0] == 200  # a symlink that stays inside is fine
    assert get(server.port, "/sublink/disklabel") == (200, b"/ 1G\n")
    assert get(server.port, "/sub/index.html")[0] == 200  # served as a file, never as an index


@pytest.mark.parametrize(
    "target",
    ["/install.conf?path=7.6/amd64", "/install.conf?../../secret.txt", "/install.conf#x",
     "/install.conf?", "/install.conf?%00"],
)  # fmt: skip
def test_query_strings_are_ignored(server: DocrootServer, target: str) -> None:
    assert get(server.port, target) == (200, b"System hostname = t\n")


@pytest.mark.parametrize(
    "method", [b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE", b"CONNECT", b"PROPFIND"]
)
def test_only_get_and_head(server: DocrootServer, method: bytes) -> None:
    status, body = get(server.port, "/install.conf", method)
    assert status in (405, 501), (method, status)
    assert b"System hostname" not in body
    head = raw_request(server.port, b"HEAD /install.conf HTTP/1.0")
    assert head == (200, b"")


def test_refused_requests_are_logged_without_serving(layout: dict[str, Path]) -> None:
    warned: list[str] = []
    srv = DocrootServer(roots=[layout["docroot"]], port_min=0, port_max=0, warn=warned.append)
    try:
        get(srv.port, "/%2e%2e/secret.txt")
    finally:
        srv.shutdown()
    assert srv.requests and srv.requests[-1][2] == 404
    assert any("404" in w for w in warned)


# --- where it listens -----------------------------------------------------------------


def _ipv4_addresses() -> list[str]:
    """Every local IPv4 address (SIOCGIFADDR per interface)."""
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _index, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
            found.append(socket.inet_ntoa(packed[20:24]))
    return found


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _state(tmp_path: Path, docroot: Path, **config) -> State:
    base = {
        "http_directory": str(docroot),
        "http_content": None,
        "http_port_min": 0,
        "http_port_max": 0,
        "http_bind_address": None,
    }
    base.update(config)
    return make_state(base, template_dir=tmp_path)


def test_step_binds_loopback_only_by_default(tmp_path: Path, layout: dict[str, Path]) -> None:
    step = StepHTTPServer()
    state = _state(tmp_path, layout["docroot"])
    step.run(state)
    try:
        server = state.data["http_server"]
        port = state.data["http_port"]
        assert server._server.server_address[0] == "127.0.0.1"
        assert _connects("127.0.0.1", port)
        # another loopback address and every other local address: nothing listens there
        others = [a for a in _ipv4_addresses() if a != "127.0.0.1"] + ["127.0.0.2"]
        for addr in others:
            assert not _connects(addr, port), f"reachable on {addr}:{port}"
    finally:
        step.cleanup(state)
    assert not _connects("127.0.0.1", port)


def test_configured_bind_address_is_the_only_one(tmp_path: Path, layout: dict[str, Path]) -> None:
    step = StepHTTPServer()
    state = _state(tmp_path, layout["docroot"], http_bind_address="127.0.0.3")
    step.run(state)
    try:
        port = state.data["http_port"]
        assert _connects("127.0.0.3", port)
        assert not _connects("127.0.0.1", port)
    finally:
        step.cleanup(state)
