"""Shared helpers for the fuzz suite: the error contract and per-target example counts."""

from __future__ import annotations

from collections import Counter

from packwrap.errors import PackwrapError

#: examples run per fuzz target (hypothesis calls the test body once per example)
COUNTS: Counter[str] = Counter()


def count(target: str) -> None:
    COUNTS[target] += 1


def assert_ours(exc: BaseException) -> None:
    """The contract: our error type, a non-empty single-line message."""
    assert isinstance(exc, PackwrapError), f"{type(exc).__name__}: {exc}"
    text = str(exc)
    assert text.strip(), "empty error message"
    assert "\n" not in text and "\r" not in text, f"multi-line error: {text!r}"
