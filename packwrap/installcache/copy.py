"""Copy a disk image keeping its holes, and hash what was copied in the same pass."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

BLOCK = 1 << 20


def sparse_copy(src: Path, dst: Path, check: Callable[[], None] | None = None) -> str:
    """Copy `src` to a new file `dst` (all-zero blocks become holes); its sha256.

    `check` runs before each block (it raises to stop: Ctrl-C). An OSError (ENOSPC, EIO)
    propagates; the caller removes what was written.
    """
    digest = hashlib.sha256()
    zero = bytes(BLOCK)
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        while True:
            if check is not None:
                check()
            block = fin.read(BLOCK)
            if not block:
                break
            digest.update(block)
            if block == zero[: len(block)]:
                fout.seek(len(block), os.SEEK_CUR)
            else:
                fout.write(block)
        fout.truncate()  # a trailing hole still counts in the size
        fout.flush()
        os.fsync(fout.fileno())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
