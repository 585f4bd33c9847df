"""-current snapshots: data, blueprint, and fetch-iso against a real loopback mirror.

The snapshot's SHA256.sig is made by the real signify-openbsd; the key standing in for the
pinned next-release key (openbsd-81-base.pub) is made at test time.
"""

from __future__ import annotations

import hcl2
import pytest

from packwrap.autoinstall.release import known_releases, load_release
from packwrap.cli import main
from packwrap.errors import PackwrapError
from packwrap.media import download as dl
from packwrap.media import keys as keys_mod
from packwrap.media.cache import MediaCache
from packwrap.media.command import snapshot_line
from packwrap.media.fetch import FetchRequest, fetch
from tests.mirror_support import SIGNIFY, build_mirror, make_keys, serve

ISO = "/snapshots/amd64/install81.iso"
BUILDINFO = b"Build date: 1764806400 - Thu Dec  4 00:00:00 UTC 2026\nBuild cvs date: ...\n"
FAST = dl.Options(connect_timeout=10, read_timeout=10, attempts=2, backoff=0.01, max_backoff=0.05)
needs_signify = pytest.mark.skipif(SIGNIFY is None, reason="signify-openbsd not installed")


def test_snapshots_are_the_newest_release_with_the_next_releases_number():
    numbered = [r for r in known_releases() if r != "snapshots"]
    assert known_releases()[-1] == "snapshots"
    snap, newest = load_release("snapshots"), load_release(numbered[-1])
    major, minor = (int(x) for x in newest.release.split("."))
    following = f"{major + 1}0" if minor == 9 else f"{major}{minor + 1}"
    assert snap.version == following == keys_mod.release_tag("snapshots")
    assert [p.texts for p in snap.prompts] == [p.texts for p in newest.prompts]
    assert snap["http_directory"].default == "pub/OpenBSD/snapshots/amd64"
    assert snap.all_sets()[2] == f"base{following}.tgz"
    assert keys_mod.pinned_key_path("snapshots").name == f"openbsd-{following}-base.pub"


def test_new_openbsd_snapshots_records_the_snapshot_in_the_manifest(tmp_path):
    target = tmp_path / "p"
    assert main(["new", "openbsd-snapshots", str(target), "--no-root-password"]) == 0
    values = hcl2.loads((target / "openbsd-snapshots.auto.pkrvars.hcl").read_text())
    assert values["iso_file"].strip('"') == "install81.iso"
    template = (target / "openbsd-snapshots.pkr.hcl").read_text()
    assert "snapshot     = var.snapshot" in template
    assert "iso_checksum = var.iso_checksum" in template


@pytest.fixture
def snap_keys(tmp_path, monkeypatch):
    keys = make_keys(tmp_path / "keys", "openbsd-81-base")
    monkeypatch.setenv("PACKWRAP_SIGNIFY_DIR", str(tmp_path / "no-such-signify-dir"))
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    pinned = {"openbsd-81-base.pub": keys.pub}
    monkeypatch.setattr(
        keys_mod, "pinned_key_path", lambda r: pinned.get(keys_mod.key_file_name(r))
    )
    return keys


def snap_fetch(tmp_path, url):
    req = FetchRequest(release="snapshots", mirrors=[url], output=tmp_path / "iso")
    return fetch(req, cache=MediaCache(tmp_path / "cache"), options=FAST)


@needs_signify
def test_fetch_keys_the_cache_by_the_signed_checksum(tmp_path, snap_keys):
    files = {"install81.iso": 256 << 10, "BUILDINFO": BUILDINFO}
    mirror = build_mirror(tmp_path / "m", files, release="snapshots", keys=snap_keys)
    with serve(mirror.root) as server:
        first = snap_fetch(tmp_path, server.url)
        assert first.how.startswith("signify: openbsd-81-base.pub")
        assert first.buildinfo == BUILDINFO.decode()
        assert snapshot_line(first.buildinfo).startswith("Build date: 1764806400")
        again = snap_fetch(tmp_path, server.url)  # unchanged snapshot: no new download
        assert again.from_cache and len(server.requests_for(ISO)) == 1
        assert len(server.requests_for("/snapshots/amd64/SHA256.sig")) == 2  # always fresh
        (mirror.dir / "install81.iso").write_bytes(b"the next day's snapshot")
        (mirror.dir / "BUILDINFO").write_bytes(BUILDINFO.replace(b"1764806400", b"1764892800"))
        mirror.resign()
        new = snap_fetch(tmp_path, server.url)
        assert not new.from_cache and new.sha256 != first.sha256
        assert "1764892800" in snapshot_line(new.buildinfo or "")
        assert len(server.requests_for(ISO)) == 2


@needs_signify
def test_a_snapshot_signed_by_another_key_is_refused_and_nothing_written(tmp_path, snap_keys):
    other = make_keys(tmp_path / "other", "openbsd-81-base")
    files = {"install81.iso": 64 << 10, "BUILDINFO": BUILDINFO}
    mirror = build_mirror(tmp_path / "m", files, release="snapshots", keys=other)
    with serve(mirror.root) as server:
        with pytest.raises(PackwrapError, match="checked against wrong key"):
            snap_fetch(tmp_path, server.url)
        assert server.requests_for(ISO) == []
    assert not (tmp_path / "iso").exists()
    media = tmp_path / "cache" / "media" / "sha256"
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))


@needs_signify
def test_fetch_iso_in_a_snapshots_project_records_the_snapshot(tmp_path, snap_keys, monkeypatch):
    from packwrap.media.command import run as fetch_iso

    monkeypatch.setenv("PACKWRAP_CACHE_DIR", str(tmp_path / "cache"))
    project = tmp_path / "p"
    assert main(["new", "openbsd-snapshots", str(project), "--no-root-password"]) == 0
    files = {"install81.iso": 64 << 10, "BUILDINFO": BUILDINFO}
    mirror = build_mirror(tmp_path / "m", files, release="snapshots", keys=snap_keys)
    with serve(mirror.root) as server:
        fetch_iso(
            release=None, arch=None, mirrors=[server.url], file=None, signify_key=None,
            output=project / "iso", checksum=None, insecure_unsigned=False, quiet=True,
            force=False, cwd=project,
        )  # fmt: skip
    values = hcl2.loads((project / "openbsd-snapshots.auto.pkrvars.hcl").read_text())
    assert values["snapshot"].strip('"') == snapshot_line(BUILDINFO.decode())
    assert values["iso_checksum"].strip('"') == f"sha256:{mirror.sha256('install81.iso')}"
