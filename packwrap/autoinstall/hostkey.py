"""An SSH host key pair for the image, shipped in the site set so the build can pin it.

Made fresh per build (a key reused across builds would be one more secret to keep);
the private half only ever goes into the site set (mode 0600), never into a log.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

#: Where OpenBSD's sshd reads its Ed25519 host key (relative to the site set's root).
PRIVATE_PATH = "etc/ssh/ssh_host_ed25519_key"
PUBLIC_PATH = PRIVATE_PATH + ".pub"


@dataclass(frozen=True)
class HostKey:
    private_openssh: bytes = b""  # OpenSSH PEM, as ssh-keygen writes it
    public_line: str = ""  # "ssh-ed25519 AAAA... comment"
    fingerprint: str = ""  # "SHA256:<base64 without padding>", as ssh-keygen -l shows it

    def __repr__(self) -> str:  # never print the private key by accident
        return f"HostKey({self.fingerprint})"

    def site_files(self) -> dict[str, tuple[bytes, int]]:
        """Site set members: path -> (content, mode)."""
        return {
            PRIVATE_PATH: (self.private_openssh, 0o600),
            PUBLIC_PATH: ((self.public_line + "\n").encode(), 0o644),
        }


def public_fingerprint(public_line: str) -> str:
    blob = base64.b64decode(public_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def make_host_key(comment: str = "") -> HostKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    line = f"{public} {comment}".strip()
    return HostKey(private, line, public_fingerprint(line))
