"""Packer iso_checksum forms and checksum-list parsing."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from packwrap.errors import PackwrapError
from packwrap.media.checksums import (
    Checksum,
    lookup,
    parse_checksum_list,
    parse_iso_checksum,
)

DATA = b"some install media"
DIGESTS = {a: hashlib.new(a, DATA).hexdigest() for a in ("md5", "sha1", "sha256", "sha512")}


def parse(spec: str, files: dict[str, str] | None = None) -> Checksum | None:
    files = files or {}

    def read_text(location: str) -> str:
        return files[location]

    return parse_iso_checksum(spec, filename="install76.iso", read_text=read_text)


def test_none_means_no_check():
    assert parse("none") is None
    assert parse("NONE") is None


@pytest.mark.parametrize("algo", sorted(DIGESTS))
def test_bare_hex_type_by_length(algo):
    assert parse(DIGESTS[algo].upper()) == Checksum(algo, DIGESTS[algo])


@pytest.mark.parametrize("algo", sorted(DIGESTS))
def test_typed(algo):
    assert parse(f"{algo}:{DIGESTS[algo]}") == Checksum(algo, DIGESTS[algo])
    assert str(parse(f"{algo.upper()}:{DIGESTS[algo]}")) == f"{algo}:{DIGESTS[algo]}"


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "empty"),
        ("abc", "neither"),
        ("sha256:abc", "64 hex"),
        ("sha256:" + "g" * 64, "64 hex"),
        ("crc32:deadbeef", "unsupported"),
        ("install76.iso", "file name"),
        ("md5:" + DIGESTS["sha256"], "32 hex"),
    ],
)
def test_bad_forms(spec, message):
    with pytest.raises(PackwrapError, match=message):
        parse(spec)


def test_file_gnu_format():
    text = (
        f"# comment\n{DIGESTS['sha256']}  install76.iso\n{'0' * 64} *other.iso\n"
        f"{'1' * 64}  ./sub/cd76.iso\n"
    )
    assert parse("file:http://x/SHA256SUMS", {"http://x/SHA256SUMS": text}) == Checksum(
        "sha256", DIGESTS["sha256"]
    )
    entries = parse_checksum_list(text)
    assert lookup(entries, "other.iso") == Checksum("sha256", "0" * 64)
    assert lookup(entries, "cd76.iso") == Checksum("sha256", "1" * 64)  # by base name


def test_file_bsd_format_and_file_url_prefix():
    text = f"SHA256 (bsd.rd) = {'2' * 64}\nSHA512 (install76.iso) = {DIGESTS['sha512']}\n"
    got = parse("file:file://./SHA512", {"./SHA512": text})
    assert got == Checksum("sha512", DIGESTS["sha512"])


def test_file_missing_entry():
    with pytest.raises(PackwrapError, match="not listed"):
        parse("file:sums", {"sums": f"{'3' * 64}  other.iso\n"})


def test_bsd_base64_digest_like_signify():
    import base64

    b64 = base64.b64encode(bytes.fromhex(DIGESTS["sha256"])).decode()
    entries = parse_checksum_list(f"SHA256 (install76.iso) = {b64}\n")
    assert entries["install76.iso"] == Checksum("sha256", DIGESTS["sha256"])


def test_openbsd_list_with_odd_names():
    text = "SHA256 (a (b).iso) = " + "4" * 64 + "\nSHA256 (x) = short\ngarbage line\n"
    entries = parse_checksum_list(text)
    assert entries == {"a (b).iso": Checksum("sha256", "4" * 64)}


@given(st.text(max_size=300))
def test_list_parser_never_crashes(text):
    for name, checksum in parse_checksum_list(text).items():
        assert name
        assert len(checksum.hexdigest) in (32, 40, 64, 128)


@given(st.text(max_size=80))
def test_iso_checksum_parser_raises_only_packwrap_errors(spec):
    try:
        parse(spec, {})
    except PackwrapError:
        pass
    except KeyError:
        pass  # `file:` with a location our fake reader does not know
