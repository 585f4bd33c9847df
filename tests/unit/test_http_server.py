"""The docroot HTTP server and StepHTTPServer, with real loopback requests."""

from __future__ import annotations

import http.client
import os
import socket
from pathlib import Path

import pytest

from packwrap.build.http_server import DocrootServer
from packwrap.build.state import State
from packwrap.build.steps.http_server import StepHTTPServer
from packwrap.errors import PackwrapError
from tests.state_support import make_state


def get(port: int, path: str, method: str = "GET", host: str = "127.0.0.1"):
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture
def docroot(tmp_path: Path) -> Path:
    root = tmp_path / "http"
    (root / "sub").mkdir(parents=True)
    (root / "install.conf").write_text("System hostname = t\n")
    (root / "sub" / "disklabel").write_text("/ 1G\n")
    (tmp_path / "secret.txt").write_text("outside\n")
    os.symlink(tmp_path / "secret.txt", root / "escape")
    os.symlink(root / "install.conf", root / "inside-link")
    return root


@pytest.fixture
def server(docroot: Path):
    warnings: list[str] = []
    srv = DocrootServer(roots=[docroot], port_min=0, port_max=0, warn=warnings.append)
    srv.warnings = warnings  # type: ignore[attr-defined]
    try:
        yield srv
    finally:
        srv.shutdown()


def test_serves_files_and_ignores_query(server: DocrootServer) -> None:
    assert get(server.port, "/install.conf") == (200, b"System hostname = t\n")
    assert get(server.port, "/install.conf?path=7.6/amd64") == (200, b"System hostname = t\n")
    assert get(server.port, "/sub/disklabel") == (200, b"/ 1G\n")
    assert get(server.port, "/sub//disklabel") == (200, b"/ 1G\n")
    assert get(server.port, "/inside-link")[0] == 200
    assert get(server.port, "/install.conf", "HEAD") == (200, b"")
    assert ("GET", "/install.conf", 200, 20) in server.requests


@pytest.mark.parametrize(
    "path",
    [
        "/missing",
        "/",
        "/sub",
        "/sub/",
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/install.conf%00",
        "/..\\secret.txt",
        "/escape",
        "/./install.conf",
        "/%ff%fe",
        "secret.txt",
    ],
)
def test_refused_paths_are_404(server: DocrootServer, path: str) -> None:
    status, body = get(server.port, path)
    assert status == 404, path
    assert b"outside" not in body
    assert server.warnings and "404" in server.warnings[-1]


def test_only_get_and_head(server: DocrootServer) -> None:
    assert get(server.port, "/install.conf", "POST")[0] == 405
    assert get(server.port, "/install.conf", "PUT")[0] == 405


def test_content_map_and_overlay_order(tmp_path: Path, docroot: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "install.conf").write_text("generated\n")
    srv = DocrootServer(roots=[overlay, docroot], content={"/x": "mapped"}, port_min=0, port_max=0)
    try:
        assert get(srv.port, "/install.conf") == (200, b"generated\n")
        assert get(srv.port, "/sub/disklabel") == (200, b"/ 1G\n")
        assert get(srv.port, "/x?y=1") == (200, b"mapped")
    finally:
        srv.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_port_range_pinned_and_busy(docroot: Path) -> None:
    port = _free_port()
    srv = DocrootServer(roots=[docroot], port_min=port, port_max=port)
    try:
        assert srv.port == port
        with pytest.raises(PackwrapError, match=f"port {port}"):
            DocrootServer(roots=[docroot], port_min=port, port_max=port)
        # a range where the first choice is busy still finds a port
        other = DocrootServer(roots=[docroot], port_min=port, port_max=port + 2)
        assert other.port == port + 1
        other.shutdown()
    finally:
        srv.shutdown()
    # freed: the port can be bound again at once
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_bind_address_is_respected(docroot: Path) -> None:
    srv = DocrootServer(roots=[docroot], bind="127.0.0.2", port_min=0, port_max=0)
    try:
        assert srv._server.server_address[0] == "127.0.0.2"
        assert get(srv.port, "/install.conf", host="127.0.0.2")[0] == 200
        with pytest.raises(OSError):
            get(srv.port, "/install.conf", host="127.0.0.1")
    finally:
        srv.shutdown()


def _state(tmp_path: Path, **config) -> State:
    base = {
        "http_directory": None,
        "http_content": None,
        "http_port_min": 0,
        "http_port_max": 0,
        "http_bind_address": None,
    }
    base.update(config)
    return make_state(base, template_dir=tmp_path)


def test_step_renders_gen_files_and_cleans_up(tmp_path: Path, docroot: Path) -> None:
    (docroot / "install.conf.pkr.in").write_text(
        "url = http://{{ .HTTPIP }}:{{ .HTTPPort }}/{{ .Name }} {{.VMName}}\n"
    )
    state = _state(tmp_path, http_directory="http")  # relative to the template dir
    state.data.update(http_ip="10.0.2.100", http_guest_port=80, vm_name="obsd")
    step = StepHTTPServer()
    step.run(state)
    port = state.data["http_port"]
    overlay = Path(state.data["http_overlay_dir"])
    try:
        assert get(port, "/install.conf") == (200, b"url = http://10.0.2.100:80/obsd obsd\n")
        assert get(port, "/install.conf.pkr.in")[0] == 404
        assert (overlay / "install.conf").stat().st_mode & 0o777 == 0o600
        assert not (docroot / "install.conf").read_text().startswith("url")  # user file intact
        assert any("GET '/install.conf' -> 200" in m for m in state.ui.logs)
    finally:
        step.cleanup(state)
    assert not overlay.exists()
    with pytest.raises(OSError):
        get(port, "/install.conf")  # nothing listens any more
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


def test_step_serves_generated_files_in_place_of_out_of_date_ones(
    tmp_path: Path, docroot: Path
) -> None:
    """A blueprint project's files rendered for this build's variables (state
    "generated_files") are served from the overlay; the docroot is not written."""
    (docroot / "install.conf.pkr.in").write_text("System hostname = old\n")
    before = {p: p.read_bytes() for p in docroot.rglob("*") if p.is_file()}
    state = _state(tmp_path, http_directory="http")
    state.data["http_ip"] = "10.0.2.100"
    state.data["generated_files"] = {
        str(docroot / "install.conf.pkr.in"): "System hostname = new\nurl = {{ .HTTPIP }}\n",
        str(docroot / "sub" / "disklabel"): "/ 2G\n",
        str(tmp_path / "elsewhere" / "x"): "not under the docroot\n",
    }
    step = StepHTTPServer()
    step.run(state)
    port = state.data["http_port"]
    try:
        assert get(port, "/install.conf") == (200, b"System hostname = new\nurl = 10.0.2.100\n")
        assert get(port, "/sub/disklabel") == (200, b"/ 2G\n")
        assert get(port, "/x")[0] == 404
        logs = state.ui.logs
        made = "Generated sub/disklabel from sub/disklabel as the variables render it now"
        assert any(made in m for m in logs)
    finally:
        step.cleanup(state)
    assert {p: p.read_bytes() for p in docroot.rglob("*") if p.is_file()} == before


def test_step_http_content_templated_and_state_bind(tmp_path: Path) -> None:
    state = _state(
        tmp_path,
        http_content={"/ks": "ip={{ .HTTPIP }} port={{ .HTTPPort }}"},
        http_bind_address="0.0.0.0",
    )
    state.data["http_bind_address"] = "127.0.0.1"  # the builder's need wins
    state.data["http_ip"] = "10.0.2.2"
    step = StepHTTPServer()
    step.run(state)
    try:
        port = state.data["http_port"]
        assert state.data["http_server"]._server.server_address[0] == "127.0.0.1"
        assert get(port, "/ks") == (200, f"ip=10.0.2.2 port={port}".encode())
    finally:
        step.cleanup(state)


def test_step_without_docroot_starts_nothing(tmp_path: Path) -> None:
    state = _state(tmp_path)
    StepHTTPServer().run(state)
    assert state.data["http_port"] == 0
    assert "http_server" not in state.data


def test_step_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(PackwrapError, match="http_directory 'nope' is not a directory"):
        StepHTTPServer().run(_state(tmp_path, http_directory="nope"))


def test_large_file_streamed(tmp_path: Path, docroot: Path) -> None:
    big = os.urandom(3 << 20)
    (docroot / "base76.tgz").write_bytes(big)
    srv = DocrootServer(roots=[docroot], port_min=0, port_max=0)
    try:
        assert get(srv.port, "/base76.tgz?path=7.6/amd64") == (200, big)
        assert srv.requests[-1] == ("GET", "/base76.tgz", 200, 3 << 20)
    finally:
        srv.shutdown()


def test_fuzz_resolve_never_leaves_the_roots(tmp_path_factory) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    base = tmp_path_factory.mktemp("fuzz")
    root = base / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_text("in")
    (base / "outside").write_text("out")
    os.symlink(base / "outside", root / "link")
    srv = DocrootServer(roots=[root], port_min=0, port_max=0)
    pieces = st.sampled_from(
        [
            "/",
            "..",
            ".",
            "%2e",
            "%2E",
            "%2f",
            "%5c",
            "%00",
            "d",
            "f",
            "link",
            "outside",
            "?",
            "#",
            "\\",
            "%",
            "~",
            "//",
        ]
    )
    try:

        @settings(max_examples=300, deadline=None)
        @given(st.lists(pieces, max_size=10).map(lambda p: "/" + "".join(p)))
        def check(path: str) -> None:
            try:
                target, _ = srv.resolve(path)
            except (UnicodeDecodeError, ValueError):
                return  # answered 404 by the handler
            if isinstance(target, Path):
                assert target.resolve().is_relative_to(root.resolve())
                assert target.read_text() == "in"

        check()
    finally:
        srv.shutdown()
