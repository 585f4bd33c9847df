"""`fetch-iso --sets`: the release's sets as a verified local mirror in the media cache
(packwrap/media/sets.py), served by the build (packwrap/build/steps/local_sets.py).

Against a real loopback mirror with real signify keys (tests/mirror_support.py).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from packwrap.build.http_server import DocrootServer
from packwrap.build.steps.local_sets import verified_mirror
from packwrap.errors import PackwrapError
from packwrap.media import keys as keys_mod
from packwrap.media.cache import MediaCache
from packwrap.media.fetch import FetchRequest
from packwrap.media.sets import fetch_sets, mirror_dir
from tests.mirror_support import SIGNIFY, build_mirror, make_keys, serve

pytestmark = pytest.mark.skipif(SIGNIFY is None, reason="signify-openbsd not installed")

SETS = {"base76.tgz": 20000, "comp76.tgz": 9000, "bsd": 5000, "bsd.rd": 7000, "install76.iso": 3000}


@pytest.fixture
def keys(tmp_path, monkeypatch):
    keys = make_keys(tmp_path / "keys", "openbsd-76-base")
    monkeypatch.setenv("PACKWRAP_SIGNIFY_DIR", str(keys.pub.parent))  # the host's key dir
    monkeypatch.setattr(keys_mod, "pinned_key_path", lambda release: None)
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return keys


def _fetch(tmp_path: Path, url: str):
    req = FetchRequest(release="7.6", mirrors=[url])
    return fetch_sets(req, cache=MediaCache(tmp_path / "cache"))


def test_sets_land_verified_in_a_local_mirror(tmp_path, keys):
    mirror = build_mirror(tmp_path / "mirror", SETS, keys=keys)
    with serve(mirror.root) as server:
        first = _fetch(tmp_path, server.url)
        again = _fetch(tmp_path, server.url)
        assert server.requests_for("/7.6/amd64/base76.tgz")  # fetched once...
        assert len(server.requests_for("/7.6/amd64/base76.tgz")) == 1  # ...then cached
    assert first.names == ["base76.tgz", "bsd", "bsd.rd", "comp76.tgz"]  # no install medium
    assert sorted(first.fetched) == first.names and again.fetched == []
    d = first.directory
    assert d == mirror_dir(MediaCache(tmp_path / "cache"), "7.6", "amd64")
    assert sorted(p.name for p in d.iterdir()) == sorted([*first.names, "SHA256.sig", "index.txt"])
    assert (d / "SHA256.sig").read_bytes() == mirror.path("SHA256.sig").read_bytes()
    assert (d / "comp76.tgz").read_bytes() == mirror.path("comp76.tgz").read_bytes()
    assert "signify: openbsd-76-base.pub" in first.how and first.how.endswith("4 sets OK")
    assert verified_mirror("7.6", "amd64", tmp_path / "cache") == d


def test_a_mirror_whose_signature_does_not_verify_is_one_line(tmp_path, keys):
    other = make_keys(tmp_path / "other", "openbsd-76-base")
    mirror = build_mirror(tmp_path / "mirror", SETS, keys=other)  # signed by another key
    with serve(mirror.root) as server, pytest.raises(PackwrapError) as info:
        _fetch(tmp_path, server.url)
    assert "SHA256.sig" in str(info.value) and "\n" not in str(info.value)
    assert not mirror_dir(MediaCache(tmp_path / "cache"), "7.6", "amd64").exists()


def test_a_set_that_does_not_match_the_signed_list_is_refused(tmp_path, keys):
    mirror = build_mirror(tmp_path / "mirror", SETS, keys=keys)
    mirror.path("comp76.tgz").write_bytes(b"tampered")
    with serve(mirror.root) as server, pytest.raises(PackwrapError, match="comp76.tgz"):
        _fetch(tmp_path, server.url)
    assert not mirror_dir(MediaCache(tmp_path / "cache"), "7.6", "amd64").exists()


def test_the_build_checks_the_cached_mirror_before_the_vm_starts(tmp_path, keys):
    with pytest.raises(PackwrapError, match=r"run `packwrap fetch-iso --sets`"):
        verified_mirror("7.6", "amd64", tmp_path / "cache")
    mirror = build_mirror(tmp_path / "mirror", SETS, keys=keys)
    with serve(mirror.root) as server:
        d = _fetch(tmp_path, server.url).directory
    sig = d / "SHA256.sig"
    sig.write_bytes(sig.read_bytes().replace(b"base76.tgz", b"base76.tgx"))
    with pytest.raises(PackwrapError) as info:
        verified_mirror("7.6", "amd64", tmp_path / "cache")
    assert "SHA256.sig" in str(info.value) and "\n" not in str(info.value)


def test_docroot_server_serves_a_mounted_directory_and_nothing_outside(tmp_path):
    sets = tmp_path / "sets"
    sets.mkdir()
    (sets / "base76.tgz").write_bytes(b"set")
    (tmp_path / "secret").write_text("no")
    (sets / "link").symlink_to(tmp_path / "secret")
    server = DocrootServer(roots=[], bind="127.0.0.1", port_min=0, port_max=0)
    try:
        server.mounts["pub/OpenBSD/7.6/amd64"] = sets
        base = f"http://127.0.0.1:{server.port}/pub/OpenBSD/7.6/amd64"
        with urllib.request.urlopen(f"{base}/base76.tgz") as resp:  # noqa: S310 - loopback
            assert resp.read() == b"set"
        for bad in ("link", "../secret", "missing"):
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(f"{base}/{bad}")  # noqa: S310 - loopback
    finally:
        server.shutdown()


def _step_state(tmp_path, values, **config):
    from tests.state_support import make_state

    state = make_state(config, template_dir=tmp_path)
    state.data["project_values"] = values
    return state


def test_the_build_refuses_a_remote_mirror_on_the_hermetic_network(tmp_path):
    from packwrap.build.steps.local_sets import StepLocalSets

    values = {"release": "7.6", "sets_location": "http", "sets_http_server": "cdn.openbsd.org"}
    with pytest.raises(PackwrapError, match="cdn.openbsd.org: a remote mirror is unreachable"):
        StepLocalSets().run(_step_state(tmp_path, values, hermetic_network=True))
    StepLocalSets().run(_step_state(tmp_path, values, hermetic_network=False))  # possible


def test_the_build_serves_the_cached_sets(tmp_path, keys, monkeypatch):
    from packwrap.build.steps.local_sets import StepLocalSets

    monkeypatch.setenv("PACKWRAP_CACHE_DIR", str(tmp_path / "cache"))
    mirror = build_mirror(tmp_path / "mirror", SETS, keys=keys)
    with serve(mirror.root) as server:
        d = _fetch(tmp_path, server.url).directory
    values = {"release": "7.6", "sets_location": "http", "sets_http_server": ""}
    state = _step_state(tmp_path, values, hermetic_network=True)
    with pytest.raises(PackwrapError, match="needs its HTTP server"):
        StepLocalSets().run(state)
    state.data["http_server"] = http = DocrootServer(roots=[], port_min=0, port_max=0)
    try:
        StepLocalSets().run(state)
        assert http.mounts == {"pub/OpenBSD/7.6/amd64": d}
    finally:
        http.shutdown()
