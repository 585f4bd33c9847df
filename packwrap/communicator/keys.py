"""A temporary SSH key pair per build, for when the template names no credentials."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class KeyPair:
    private_key_file: Path  # OpenSSH PEM, mode 0600
    public_key: str  # one authorized_keys line: "ssh-ed25519 AAAA... comment"


def _generate(kind: str, bits: int | None) -> Any:
    """temporary_key_pair_type/bits with Packer's defaults (rsa 4096, ecdsa 521); "dsa" is
    refused by the schema (common_options.py)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=bits or 4096)
    if kind == "ecdsa":
        curves = {256: ec.SECP256R1(), 384: ec.SECP384R1(), 521: ec.SECP521R1()}
        return ec.generate_private_key(curves[bits or 521])
    return ed25519.Ed25519PrivateKey.generate()


def make_temporary_key_pair(
    directory: Path,
    comment: str = "packwrap-temporary-key",
    kind: str | None = None,
    bits: int | None = None,
) -> KeyPair:
    """A key pair of `kind` (packwrap's default: ed25519); the private half is written
    0600 and never logged."""
    from cryptography.hazmat.primitives import serialization

    kind = kind or "ed25519"
    key = _generate(kind, bits)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"id_{kind}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private)
    return KeyPair(path, f"{public.decode()} {comment}")
