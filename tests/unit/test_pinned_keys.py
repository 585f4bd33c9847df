"""The OpenBSD release keys the blueprint pins (blueprints/openbsd/keys/).

They are the third key source of fetch-iso, after --signify-key and /etc/signify. These
tests check the files themselves (format, names, the release each belongs to), that the
real signify-openbsd reads them the same way packwrap does, and that fetch-iso uses one
when no other key is given and refuses a list signed by any other key.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from packwrap.errors import PackwrapError
from packwrap.media import keys as keys_mod
from packwrap.media.cache import MediaCache
from packwrap.media.fetch import FetchRequest, fetch
from packwrap.media.signify import load_public_key, verify_embedded
from tests.mirror_support import SIGNIFY, build_mirror, make_keys, serve

REPO = Path(__file__).resolve().parents[2]
KEY_DIR = REPO / "blueprints" / "openbsd" / "keys"
PINNED = sorted(KEY_DIR.glob("openbsd-*-base.pub"))
# The key number in the real 7.6 amd64 SHA256.sig (the first line of its untrusted comment).
KEYNUM_76 = "e4bb09f899babca2"


def release_of(path: Path) -> str:
    tag = re.fullmatch(r"openbsd-(\d)(\d+)-base\.pub", path.name)
    assert tag, path.name
    return f"{tag[1]}.{tag[2]}"


def test_every_blueprint_release_has_a_pinned_key():
    releases = sorted(p.stem for p in (REPO / "blueprints/openbsd/releases").glob("*.toml"))
    assert releases, "no release data"
    for release in releases:
        path = keys_mod.pinned_key_path(release)
        assert path is not None and path.parent == KEY_DIR, release
    assert keys_mod.pinned_key_path("6.9") is None


@pytest.mark.parametrize("path", PINNED, ids=[p.name for p in PINNED])
def test_pinned_key_is_a_signify_base_key_of_its_release(path):
    key = load_public_key(path)
    release = release_of(path)
    assert key.name == keys_mod.key_file_name(release)
    assert key.comment == f"openbsd {release} base public key"
    assert len(key.key) == 32 and len(key.keynum) == 8
    assert path.read_bytes().count(b"\n") == 2  # exactly what signify -G writes


def test_pinned_keys_are_distinct_and_76_is_the_release_key():
    keys = [load_public_key(p) for p in PINNED]
    assert len({k.keynum for k in keys}) == len({k.key for k in keys}) == len(keys)
    assert load_public_key(KEY_DIR / "openbsd-76-base.pub").keynum_hex == KEYNUM_76


@pytest.mark.skipif(SIGNIFY is None, reason="signify-openbsd not installed")
@pytest.mark.parametrize("path", PINNED, ids=[p.name for p in PINNED])
def test_signify_openbsd_and_packwrap_agree_on_a_pinned_key(tmp_path, path):
    """A list signed by another key: both say 'checked against wrong key'."""
    keys = make_keys(tmp_path / "k", "other")
    msg = tmp_path / "SHA256"
    msg.write_text("SHA256 (install76.iso) = " + "0" * 64 + "\n")
    sig = tmp_path / "SHA256.sig"
    subprocess.run(
        [SIGNIFY, "-S", "-e", "-s", str(keys.sec), "-m", str(msg), "-x", str(sig)], check=True
    )
    theirs = subprocess.run(
        [SIGNIFY, "-V", "-e", "-p", str(path), "-x", str(sig), "-m", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert theirs.returncode != 0 and "checked against wrong key" in theirs.stderr
    with pytest.raises(PackwrapError, match="checked against wrong key"):
        verify_embedded(sig.read_bytes(), load_public_key(path))


@pytest.mark.skipif(SIGNIFY is None, reason="signify-openbsd not installed")
def test_fetch_falls_back_to_the_pinned_key(tmp_path, monkeypatch):
    """No --signify-key, no /etc/signify key: the pinned 7.6 key decides, and a mirror
    whose SHA256.sig is signed by any other key is refused with nothing left behind."""
    monkeypatch.setenv("PACKWRAP_SIGNIFY_DIR", str(tmp_path / "no-etc-signify"))
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    keys = make_keys(tmp_path / "keys", "openbsd-76-base")
    mirror = build_mirror(tmp_path / "mirror", {"install76.iso": 64 << 10}, keys=keys)
    found = keys_mod.find_key("7.6", None)
    assert found is not None and found.origin == "blueprint"
    with serve(mirror.root) as server:
        with pytest.raises(PackwrapError, match="checked against wrong key"):
            fetch(
                FetchRequest(release="7.6", mirrors=[server.url], output=tmp_path / "out"),
                cache=MediaCache(tmp_path / "cache"),
            )
        assert server.requests_for("/7.6/amd64/install76.iso") == []
    assert not (tmp_path / "out").exists()
    assert not list((tmp_path / "cache").rglob("install76.iso*"))
