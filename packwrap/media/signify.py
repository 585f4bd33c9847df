"""signify(1) public keys and embedded signatures, verified with Ed25519 from `cryptography`.

Formats (openbsd/src usr.bin/signify/signify.c): every file is
`untrusted comment: <text>\\n` + base64 of a struct + `\\n`; the struct starts with
the algorithm `Ed` and an 8-byte key number. Public key: + 32-byte key (42 bytes);
signature: + 64-byte signature (74 bytes). An embedded signature (`signify -e`,
OpenBSD's SHA256.sig) is followed directly by the signed message.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from pathlib import Path

from packwrap.errors import PackwrapError

COMMENT_PREFIX = b"untrusted comment: "
PKALG = b"Ed"
KEYNUM_LEN = 8
PUBKEY_LEN = 32
SIG_LEN = 64
MAX_COMMENT = 1024  # signify's COMMENTMAXLEN


@dataclasses.dataclass(frozen=True)
class PublicKey:
    keynum: bytes
    key: bytes
    comment: str
    name: str  # file name, for messages ("openbsd-76-base.pub")

    @property
    def keynum_hex(self) -> str:
        return self.keynum.hex()


@dataclasses.dataclass(frozen=True)
class EmbeddedSignature:
    keynum: bytes
    signature: bytes
    comment: str
    message: bytes

    @property
    def keynum_hex(self) -> str:
        return self.keynum.hex()

    @property
    def key_name_hint(self) -> str | None:
        """The key named by `untrusted comment: verify with <name>`, if any."""
        prefix = "verify with "
        if self.comment.startswith(prefix):
            return self.comment[len(prefix) :].strip().rsplit("/", 1)[-1] or None
        return None


def _split_header(data: bytes, what: str, source: str) -> tuple[str, bytes, bytes]:
    """-> (comment, decoded struct, rest after the base64 line)."""
    if not data.startswith(COMMENT_PREFIX):
        raise PackwrapError(f"{what} does not start with 'untrusted comment:'", file=source)
    nl1 = data.find(b"\n")
    if nl1 < 0 or nl1 - len(COMMENT_PREFIX) > MAX_COMMENT:
        raise PackwrapError(f"{what} has no valid comment line", file=source)
    nl2 = data.find(b"\n", nl1 + 1)
    if nl2 < 0:
        raise PackwrapError(f"{what} has no base64 line", file=source)
    comment = data[len(COMMENT_PREFIX) : nl1].decode("utf-8", "replace")
    try:
        raw = base64.b64decode(data[nl1 + 1 : nl2], validate=True)
    except (binascii.Error, ValueError):
        raise PackwrapError(f"{what} has an invalid base64 line", file=source, line=2) from None
    return comment, raw, data[nl2 + 1 :]


def parse_public_key(data: bytes, source: str = "public key") -> PublicKey:
    comment, raw, rest = _split_header(data, "signify public key", source)
    if len(raw) != len(PKALG) + KEYNUM_LEN + PUBKEY_LEN or not raw.startswith(PKALG):
        raise PackwrapError("not a signify Ed25519 public key", file=source, line=2)
    if rest.strip():
        raise PackwrapError("unexpected data after the public key", file=source, line=3)
    return PublicKey(
        keynum=raw[2 : 2 + KEYNUM_LEN],
        key=raw[2 + KEYNUM_LEN :],
        comment=comment,
        name=Path(source).name,
    )


def load_public_key(path: Path) -> PublicKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PackwrapError(f"cannot read signify key: {exc.strerror}", file=str(path)) from None
    return parse_public_key(data, str(path))


def parse_embedded(data: bytes, source: str = "SHA256.sig") -> EmbeddedSignature:
    comment, raw, message = _split_header(data, "signify signature", source)
    if len(raw) != len(PKALG) + KEYNUM_LEN + SIG_LEN or not raw.startswith(PKALG):
        raise PackwrapError("not a signify Ed25519 signature", file=source, line=2)
    return EmbeddedSignature(
        keynum=raw[2 : 2 + KEYNUM_LEN],
        signature=raw[2 + KEYNUM_LEN :],
        comment=comment,
        message=message,
    )


def verify_embedded(data: bytes, key: PublicKey, source: str = "SHA256.sig") -> bytes:
    """Check an embedded signature like `signify -V -e`; return the verified message."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    sig = parse_embedded(data, source)
    if sig.keynum != key.keynum:
        raise PackwrapError(
            f"verification failed: checked against wrong key ({key.name} is key "
            f"{key.keynum_hex}, the signature needs key {sig.keynum_hex}"
            + (f", '{sig.key_name_hint}'" if sig.key_name_hint else "")
            + ")",
            file=source,
        )
    try:
        Ed25519PublicKey.from_public_bytes(key.key).verify(sig.signature, sig.message)
    except InvalidSignature:
        raise PackwrapError(
            f"signature verification failed with {key.name} (key {key.keynum_hex}): "
            "the file was altered or not signed by this key",
            file=source,
        ) from None
    return sig.message
