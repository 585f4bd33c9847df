"""Copy a disk image keeping its holes, and checksum it in the same pass.

Disks are mostly holes (a 20G image with a 1G install), so both the copy and the
checksum visit only the file's data extents (SEEK_DATA/SEEK_HOLE; a file system without
them shows one extent) and skip all-zero blocks. The checksum is sha256 over (offset,
block) of every non-zero block and the size: the same for a file and its sparse copy,
however their holes fall.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

BLOCK = 1 << 20
_ZERO = bytes(BLOCK)


def _extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each data extent of the open file `fd`."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
            end = os.lseek(fd, start, os.SEEK_HOLE)
        except OSError as exc:  # ENXIO: no data after pos; EINVAL: not supported
            if exc.errno == errno.ENXIO:
                return
            yield pos, size
            return
        yield start, min(end, size)
        pos = end


def _blocks(fd: int, size: int) -> Iterator[tuple[int, bytes]]:
    """(offset, data) of every block of the file that is not all zeros."""
    for start, end in _extents(fd, size):
        pos = start
        while pos < end:
            block = os.pread(fd, min(BLOCK, end - pos), pos)
            if not block:
                return
            if block != _ZERO[: len(block)]:
                yield pos, block
            pos += len(block)


def _update(digest: hashlib._Hash, offset: int, block: bytes) -> None:
    digest.update(offset.to_bytes(8, "big") + len(block).to_bytes(4, "big"))
    digest.update(block)


def sparse_copy(src: Path, dst: Path, check: Callable[[], None] | None = None) -> str:
    """Copy `src` to a new file `dst` (zeros become holes); the checksum (disk_checksum).

    `check` runs before each block (it raises to stop: Ctrl-C). An OSError (ENOSPC, EIO)
    propagates; the caller removes what was written.
    """
    digest = hashlib.sha256()
    fin = os.open(src, os.O_RDONLY)
    try:
        size = os.fstat(fin).st_size
        with open(dst, "xb") as fout:
            for offset, block in _blocks(fin, size):
                if check is not None:
                    check()
                _update(digest, offset, block)
                fout.seek(offset)
                fout.write(block)
            fout.truncate(size)
            fout.flush()
            os.fsync(fout.fileno())
    finally:
        os.close(fin)
    digest.update(b"size" + size.to_bytes(8, "big"))
    return digest.hexdigest()


#: Linux's FICLONE ioctl (_IOW(0x94, 9, int)): share the extents of another file.
FICLONE = 0x40049409


def clone_or_copy(src: Path, dst: Path, check: Callable[[], None] | None = None) -> None:
    """`dst` as a reflink of `src` where the file system can (btrfs, XFS: instant, no
    space used), else a sparse copy. For a disk already checked: no checksum."""
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        try:
            import fcntl

            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
            return
        except (ImportError, OSError):  # not Linux, or no reflinks here: copy
            pass
    dst.unlink()  # made empty above, by us
    sparse_copy(src, dst, check)


def disk_checksum(path: Path) -> str:
    """The checksum sparse_copy returns, of the file at `path`."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        for offset, block in _blocks(fd, size):
            _update(digest, offset, block)
    finally:
        os.close(fd)
    digest.update(b"size" + size.to_bytes(8, "big"))
    return digest.hexdigest()
