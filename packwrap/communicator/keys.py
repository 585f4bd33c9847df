"""A temporary SSH key pair per build, for when the template names no credentials."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KeyPair:
    private_key_file: Path  # OpenSSH PEM, mode 0600
    public_key: str  # one authorized_keys line: "ssh-ed25519 AAAA... comment"


def make_temporary_key_pair(directory: Path, comment: str = "packwrap-temporary-key") -> KeyPair:
    """Ed25519 key pair; the private half is written 0600 and never logged."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "id_ed25519"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private)
    return KeyPair(path, f"{public.decode()} {comment}")
