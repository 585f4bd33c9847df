"""signify(1) keys and embedded signatures, with Ed25519 from `cryptography`.

Formats (usr.bin/signify/signify.c: rev 1.98 read in openbsd/src at f30a54aae129, rev
1.119 in NCommander/openbsd-src-with-branches at 0c8f41463eb3): every file
is `untrusted comment: <text>\\n` + base64 of a struct + `\\n`; the struct starts with
the algorithm `Ed` and an 8-byte key number. Public key: + 32-byte key (42 bytes);
signature: + 64-byte signature (74 bytes). An embedded signature (`signify -e`,
OpenBSD's SHA256.sig) is followed directly by the signed message.

Secret key (104 bytes): `Ed`, KDF `BK`, rounds (uint32, big-endian; 0 for `-G -n`),
16-byte salt, 8-byte checksum (the first bytes of SHA-512 of the plain secret key),
key number, then the 64-byte Ed25519 secret key (seed + public key) XOR-ed with
bcrypt_pbkdf(passphrase, salt, 64 bytes, rounds). A checksum mismatch after the XOR
is signify's "incorrect passphrase". A signature made with `NAME.sec` says
`verify with NAME.pub`, any other key file `signature from <key comment>`.
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
KDFALG = b"BK"
SALT_LEN = 16
CHECKSUM_LEN = 8
SECKEY_LEN = 64
#: pkalg, kdfalg, rounds, salt, checksum, keynum, encrypted secret key
ENCKEY_LEN = 2 + 2 + 4 + SALT_LEN + CHECKSUM_LEN + KEYNUM_LEN + SECKEY_LEN
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


@dataclasses.dataclass(frozen=True)
class SecretKey:
    """A signify secret key as stored: still encrypted unless `rounds` is 0."""

    keynum: bytes
    rounds: int
    salt: bytes
    checksum: bytes
    encrypted: bytes
    comment: str
    name: str  # file name ("packwrap.sec")

    @property
    def needs_passphrase(self) -> bool:
        return self.rounds > 0

    @property
    def signature_comment(self) -> str:
        """What `signify -S` writes as the signature's untrusted comment."""
        if self.name.endswith(".sec") and len(self.name) > len(".sec"):
            return f"verify with {self.name[: -len('.sec')]}.pub"
        return f"signature from {self.comment}"


@dataclasses.dataclass(frozen=True)
class SigningKey:
    """An unlocked secret key: the Ed25519 seed and the key number signatures carry."""

    keynum: bytes
    seed: bytes = dataclasses.field(repr=False)
    signature_comment: str


def parse_secret_key(data: bytes, source: str = "secret key") -> SecretKey:
    comment, raw, _rest = _split_header(data, "signify secret key", source)
    if len(raw) != ENCKEY_LEN or not raw.startswith(PKALG):
        raise PackwrapError("not a signify Ed25519 secret key", file=source, line=2)
    if raw[2:4] != KDFALG:
        raise PackwrapError("signify secret key with an unsupported KDF", file=source, line=2)
    at = 8
    salt, at = raw[at : at + SALT_LEN], at + SALT_LEN
    checksum, at = raw[at : at + CHECKSUM_LEN], at + CHECKSUM_LEN
    keynum, at = raw[at : at + KEYNUM_LEN], at + KEYNUM_LEN
    return SecretKey(
        keynum=keynum,
        rounds=int.from_bytes(raw[4:8], "big"),
        salt=salt,
        checksum=checksum,
        encrypted=raw[at:],
        comment=comment,
        name=Path(source).name,
    )


def load_secret_key(path: Path) -> SecretKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PackwrapError(
            f"cannot read signify secret key: {exc.strerror}", file=str(path)
        ) from None
    return parse_secret_key(data, str(path))


def unlock(key: SecretKey, passphrase: str | None, source: str = "secret key") -> SigningKey:
    """Decrypt `key` as `signify -S` does; PackwrapError for a wrong or missing passphrase."""
    import hashlib

    if key.needs_passphrase:
        if not passphrase:
            raise PackwrapError("the signify secret key needs a passphrase", file=source)
        import bcrypt

        # signify's default is 42 rounds, below what bcrypt.kdf accepts without the flag
        xor = bcrypt.kdf(
            passphrase.encode("utf-8"), key.salt, SECKEY_LEN, key.rounds, ignore_few_rounds=True
        )
    else:
        xor = bytes(SECKEY_LEN)
    plain = bytes(a ^ b for a, b in zip(key.encrypted, xor, strict=True))
    if hashlib.sha512(plain).digest()[:CHECKSUM_LEN] != key.checksum:
        what = "incorrect passphrase" if key.needs_passphrase else "corrupt secret key"
        raise PackwrapError(f"{what} for signify key {key.name}", file=source)
    return SigningKey(key.keynum, plain[:32], key.signature_comment)


def sign_embedded(message: bytes, key: SigningKey) -> bytes:
    """The bytes `signify -S -e` writes: comment line, signature line, the message."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    signature = Ed25519PrivateKey.from_private_bytes(key.seed).sign(message)
    raw = PKALG + key.keynum + signature
    header = COMMENT_PREFIX + key.signature_comment.encode("utf-8") + b"\n"
    return header + base64.b64encode(raw) + b"\n" + message
