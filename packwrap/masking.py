"""The one secret masker: sensitive values never reach a terminal, a log or an error.

Every place that shows text that may hold a secret (the build UI and its log, the serial
console log and tails, template problems, variable type errors) masks it here, with
Packer's placeholder.
"""

from __future__ import annotations

from collections.abc import Iterable

SENSITIVE = "<sensitive>"  # Packer's placeholder for a sensitive value


def mask(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by <sensitive>; the longest first, so a secret
    that contains a shorter one is not left half-masked."""
    for secret in sorted({s for s in secrets if s}, key=lambda s: (-len(s), s)):
        text = text.replace(secret, SENSITIVE)
    return text


def secret_prefix_at_end(data: bytes, secrets: Iterable[str]) -> int:
    """Length of the longest end of `data` that is a proper beginning of a secret: a
    stream (a slow echo on the console) must hold that back, or a secret split across
    two reads passes the masker in pieces."""
    longest = 0
    for secret in secrets:
        raw = secret.encode("utf-8")
        for n in range(min(len(raw) - 1, len(data)), longest, -1):
            if data.endswith(raw[:n]):
                longest = n
                break
    return longest
