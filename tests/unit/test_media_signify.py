"""Our Ed25519/signify check against real `signify-openbsd` keys and embedded signatures.

The agreement tests run both our verifier and `signify-openbsd -C` on the same good and
tampered inputs and require the same verdict.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from packwrap.errors import PackwrapError
from packwrap.media.checksums import lookup, parse_checksum_list
from packwrap.media.signify import (
    load_public_key,
    parse_embedded,
    parse_public_key,
    verify_embedded,
)
from tests.mirror_support import SIGNIFY, make_keys, sign_embedded, signify_check

pytestmark = pytest.mark.skipif(SIGNIFY is None, reason="signify-openbsd not installed")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    return make_keys(d, "openbsd-76-base"), make_keys(d / "other", "openbsd-76-base")


@pytest.fixture
def signed(tmp_path, keys):
    """A directory like a mirror's: two files, SHA256, SHA256.sig (embedded)."""
    good, _ = keys
    (tmp_path / "install76.iso").write_bytes(b"iso" * 1000)
    (tmp_path / "bsd.rd").write_bytes(b"rd" * 500)
    lines = "".join(
        f"SHA256 ({n}) = {hashlib.sha256((tmp_path / n).read_bytes()).hexdigest()}\n"
        for n in ("bsd.rd", "install76.iso")
    )
    (tmp_path / "SHA256").write_text(lines)
    sign_embedded(good, tmp_path / "SHA256", tmp_path / "SHA256.sig")
    return tmp_path


def ours(pub: Path, sigfile: Path, files: list[str], cwd: Path) -> bool:
    """Our equivalent of `signify -C`: signature, then each file's SHA256."""
    try:
        message = verify_embedded(sigfile.read_bytes(), load_public_key(pub), str(sigfile))
    except PackwrapError:
        return False
    entries = parse_checksum_list(message.decode())
    for name in files:
        entry = lookup(entries, name)
        if entry is None:
            return False
        if hashlib.sha256((cwd / name).read_bytes()).hexdigest() != entry.hexdigest:
            return False
    return True


def test_parse_real_key_and_signature(keys, signed):
    good, _ = keys
    key = load_public_key(good.pub)
    assert key.keynum_hex == good.keynum
    assert key.name == "openbsd-76-base.pub"
    sig = parse_embedded((signed / "SHA256.sig").read_bytes())
    assert sig.keynum == key.keynum
    assert sig.key_name_hint == "openbsd-76-base.pub"
    assert sig.message == (signed / "SHA256").read_bytes()
    assert verify_embedded((signed / "SHA256.sig").read_bytes(), key) == sig.message


def _flip(data: bytes, index: int) -> bytes:
    b = bytearray(data)
    b[index] ^= 0x01
    return bytes(b)


def _tamper_message(d: Path) -> None:
    """Change one hex digit of the signed list (the file hashes stay right)."""
    sig = d / "SHA256.sig"
    data = sig.read_bytes()
    i = data.rindex(b"= ") + 3
    sig.write_bytes(data[:i] + (b"0" if data[i : i + 1] != b"0" else b"1") + data[i + 1 :])


def _tamper_signature(d: Path) -> None:
    sig = d / "SHA256.sig"
    lines = sig.read_bytes().split(b"\n", 2)
    raw = base64.b64decode(lines[1])
    lines[1] = base64.b64encode(_flip(raw, 40))
    sig.write_bytes(b"\n".join(lines))


def _tamper_file(d: Path) -> None:
    p = d / "install76.iso"
    p.write_bytes(_flip(p.read_bytes(), 100))


def _append_line(d: Path) -> None:
    sig = d / "SHA256.sig"
    sig.write_bytes(sig.read_bytes() + b"SHA256 (evil) = " + b"0" * 64 + b"\n")


@pytest.mark.parametrize(
    "tamper, expect_ok",
    [
        (None, True),
        (_tamper_message, False),
        (_tamper_signature, False),
        (_tamper_file, False),
        (_append_line, False),
    ],
    ids=["good", "message", "signature", "file", "appended-line"],
)
def test_agrees_with_signify_C(keys, signed, tamper, expect_ok):
    good, _ = keys
    if tamper:
        tamper(signed)
    files = ["install76.iso", "bsd.rd"]
    theirs = signify_check(good.pub, signed / "SHA256.sig", files, signed)
    mine = ours(good.pub, signed / "SHA256.sig", files, signed)
    assert theirs == expect_ok
    assert mine == theirs


def test_wrong_key_agrees_and_says_so(keys, signed):
    _, other = keys
    assert signify_check(other.pub, signed / "SHA256.sig", ["bsd.rd"], signed) is False
    with pytest.raises(PackwrapError, match="checked against wrong key"):
        verify_embedded((signed / "SHA256.sig").read_bytes(), load_public_key(other.pub))


def test_forged_keynum_fails_on_the_signature(keys, signed, tmp_path):
    """The other key relabelled with the right key number: the Ed25519 check must catch it."""
    good, other = keys
    raw_good = base64.b64decode(good.pub.read_text().splitlines()[1])
    raw_other = base64.b64decode(other.pub.read_text().splitlines()[1])
    forged = tmp_path / "forged" / "openbsd-76-base.pub"
    forged.parent.mkdir()
    forged.write_text(
        "untrusted comment: forged\n"
        + base64.b64encode(raw_good[:10] + raw_other[10:]).decode()
        + "\n"
    )
    assert signify_check(forged, signed / "SHA256.sig", ["bsd.rd"], signed) is False
    with pytest.raises(PackwrapError, match="signature verification failed"):
        verify_embedded((signed / "SHA256.sig").read_bytes(), load_public_key(forged))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "untrusted comment"),
        (b"hello\nRWQ=\n", "untrusted comment"),
        (b"untrusted comment: x\n", "no base64 line"),
        (b"untrusted comment: x\n!!!notbase64\n", "invalid base64"),
        (b"untrusted comment: x\n" + base64.b64encode(b"Ed" + b"\0" * 10) + b"\n", "not a signify"),
        (b"untrusted comment: x\n" + base64.b64encode(b"XX" + b"\0" * 40) + b"\n", "not a signify"),
    ],
)
def test_bad_public_keys(data, message):
    with pytest.raises(PackwrapError, match=message):
        parse_public_key(data, "k.pub")


def test_bad_signature_file_is_one_line_error():
    with pytest.raises(PackwrapError) as info:
        parse_embedded(b"<html><body>404</body></html>\n", "SHA256.sig")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("SHA256.sig: ")
