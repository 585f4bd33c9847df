"""Passwords as the installer takes them as-is: bcrypt ($2b$, as encrypt(1) makes) or the
13-asterisk lock-out. Anything else in a response file is plaintext sitting in a served file.
"""

from __future__ import annotations

import re

from packwrap.errors import PackwrapError

LOCKED = "*************"  # 13 asterisks: no password login (install.sub encr_pwd)
BCRYPT_COST = 10
_BCRYPT = re.compile(r"^\$2[abxy]\$(\d\d)\$[./A-Za-z0-9]{53}$")


def hash_password(plain: str, *, rounds: int = BCRYPT_COST) -> str:
    """bcrypt-hash a password like `encrypt -b` does ($2b$, cost >= 10)."""
    import bcrypt

    if not plain:
        raise PackwrapError("empty password: give one, or use the lock-out '*************'")
    if "\n" in plain or "\r" in plain:
        raise PackwrapError("a password cannot contain a line break")
    data = plain.encode("utf-8")
    if len(data) > 72:
        raise PackwrapError("password longer than 72 bytes (bcrypt uses only the first 72)")
    return bcrypt.hashpw(
        data, bcrypt.gensalt(rounds=max(rounds, BCRYPT_COST), prefix=b"2b")
    ).decode("ascii")


def is_installer_hash(s: str) -> bool:
    """True when install.sub's encr_pwd stores the value unchanged.

    encr_pwd: `$2?$NN$...` longer than 40 characters, or exactly 13 asterisks.
    """
    if s == LOCKED:
        return True
    return len(s) > 40 and re.match(r"^\$2.\$\d\d\$", s) is not None


def is_bcrypt(s: str) -> bool:
    """A well-formed bcrypt hash with cost >= 10 (stricter than the installer's check)."""
    m = _BCRYPT.match(s)
    return m is not None and int(m.group(1)) >= BCRYPT_COST


def check_password_value(s: str, name: str) -> None:
    """PackwrapError unless `s` is a bcrypt hash (cost 10+) or the lock-out."""
    if s == LOCKED or is_bcrypt(s):
        return
    raise PackwrapError(
        f"{name} must be a bcrypt hash ($2b$10$..., as encrypt(1) makes) or "
        f"'{LOCKED}' (no password login); got something else -- never put a plaintext "
        "password in a response file"
    )
