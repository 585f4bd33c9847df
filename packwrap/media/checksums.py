"""Checksums: OpenBSD's `SHA256` list, GNU `*SUMS` files and Packer's `iso_checksum` forms.

Packer's forms (packer-plugin-sdk iso_config.go): `none`, a bare hex digest (type by
length), `md5:` / `sha1:` / `sha256:` / `sha512:` + hex, or `file:<url|path>` naming a
checksum file in GNU (`<hex>  name`) or BSD-tagged (`SHA256 (name) = <hex>`) format.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

from packwrap.errors import PackwrapError

HEX_LEN = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
BY_LEN = {n: a for a, n in HEX_LEN.items()}
TAG_NAMES = {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}

_BSD_LINE = re.compile(r"^(?P<algo>[A-Z0-9]+) \((?P<name>.+)\) = (?P<digest>[0-9A-Za-z+/=]+)$")
_GNU_LINE = re.compile(r"^(?P<digest>[0-9a-fA-F]+) [ *](?P<name>.+)$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")


@dataclasses.dataclass(frozen=True)
class Checksum:
    algo: str  # md5 | sha1 | sha256 | sha512
    hexdigest: str  # lower-case

    def __str__(self) -> str:
        return f"{self.algo}:{self.hexdigest}"

    def new_hash(self) -> hashlib._Hash:
        return hashlib.new(self.algo)


def make_checksum(algo: str, digest: str, source: str = "checksum") -> Checksum:
    algo = algo.lower()
    if algo not in HEX_LEN:
        raise PackwrapError(f"unsupported checksum type {algo!r} (md5, sha1, sha256, sha512)")
    if not _HEX.fullmatch(digest) or len(digest) != HEX_LEN[algo]:
        raise PackwrapError(
            f"{source}: {algo} digest must be {HEX_LEN[algo]} hex characters, got {digest!r}"
        )
    return Checksum(algo, digest.lower())


def _digest_from_any(algo: str, digest: str) -> str | None:
    """signify accepts hex or base64 digests in BSD lines; normalise to hex."""
    if _HEX.fullmatch(digest) and len(digest) == HEX_LEN[algo]:
        return digest.lower()
    try:
        raw = base64.b64decode(digest, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) * 2 == HEX_LEN[algo] else None


def parse_checksum_list(text: str, source: str = "SHA256") -> dict[str, Checksum]:
    """Parse a BSD-tagged or GNU checksum file -> {file name: Checksum}.

    Names keep their path as written; `lookup` also matches on the base name.
    Unknown algorithms and malformed lines are skipped (signify ignores them too
    unless the file is asked for).
    """
    out: dict[str, Checksum] = {}
    for raw_line in text.splitlines():
        line = raw_line.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _BSD_LINE.match(line)
        if m and m["algo"] in TAG_NAMES:
            algo = TAG_NAMES[m["algo"]]
            hexd = _digest_from_any(algo, m["digest"])
            if hexd:
                out.setdefault(m["name"], Checksum(algo, hexd))
            continue
        m = _GNU_LINE.match(line)
        if m and len(m["digest"]) in BY_LEN:
            name = m["name"]
            if name.startswith("\\"):  # GNU escapes names with backslashes
                name = name[1:].replace("\\n", "\n").replace("\\\\", "\\")
            out.setdefault(name, Checksum(BY_LEN[len(m["digest"])], m["digest"].lower()))
    return out


def lookup(entries: dict[str, Checksum], filename: str) -> Checksum | None:
    if filename in entries:
        return entries[filename]
    for name, checksum in entries.items():
        if name.removeprefix("./").rsplit("/", 1)[-1] == filename:
            return checksum
    return None


def parse_iso_checksum(
    spec: str,
    *,
    filename: str,
    read_text: Callable[[str], str] | None = None,
) -> Checksum | None:
    """Packer's `iso_checksum` -> Checksum, or None for `none`.

    `read_text(location)` fetches a `file:` checksum file (URL or local path).
    """
    spec = spec.strip()
    if not spec:
        raise PackwrapError("empty checksum (use 'none' to skip the check)")
    if spec.lower() == "none":
        return None
    if spec.lower().endswith(".iso"):
        raise PackwrapError(f"checksum {spec!r} looks like a file name, not a checksum")
    kind, sep, value = spec.partition(":")
    if sep and kind.lower() == "file":
        if read_text is None:
            raise PackwrapError("file: checksums need a way to read the file")
        location = value.removeprefix("file://") if value.startswith("file://") else value
        text = read_text(location)
        found = lookup(parse_checksum_list(text, location), filename)
        if found is None:
            raise PackwrapError(f"{filename} is not listed in checksum file {value}")
        return found
    if sep:
        return make_checksum(kind, value, spec)
    if not _HEX.fullmatch(spec) or len(spec) not in BY_LEN:
        raise PackwrapError(
            f"checksum {spec!r} is neither 'none', 'type:hex', 'file:...', "
            "nor a bare md5/sha1/sha256/sha512 hex digest"
        )
    return Checksum(BY_LEN[len(spec)], spec.lower())


def file_digest(path: Path, kind: str, check: Callable[[], None] | None = None) -> str:
    """Hex digest of `path`; `check` runs between blocks (it raises to stop: Ctrl-C)."""
    h = hashlib.new(kind)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            if check is not None:
                check()
            h.update(block)
    return h.hexdigest()
