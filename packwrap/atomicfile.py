"""atomic_write: a file is either its old content or its whole new content, never half.

The text goes to a temporary file in the same directory (so os.replace is a rename on
one file system); a failure or Ctrl-C removes it and leaves the old file as it was.
The temporary file is created 0600 (mkstemp), so a secret is never readable by others,
not even while it is being written; the final mode is set before the rename.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

PRIVATE = 0o600  # secret files: the owner only


def atomic_write(
    path: str | os.PathLike[str],
    data: str | bytes,
    *,
    mode: int | None = None,
    keep_mode: bool = False,
) -> None:
    """Write `data` (text as UTF-8) to `path`, creating its directory.

    The file gets `mode` exactly, or when None what open() would give (0666 less the
    umask); `keep_mode` keeps an existing file's mode instead (a user's 0600 pkrvars).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    final = mode if mode is not None else with_umask(0o666)
    if keep_mode:
        with contextlib.suppress(FileNotFoundError):
            final = p.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, final)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def with_umask(mode: int) -> int:
    """`mode` less the process umask: what os.open(path, ..., mode) would create."""
    return mode & ~_umask()


def _umask() -> int:
    # Linux shows the umask in /proc; setting it to read it back would briefly change it
    # for every thread (the console reader, the HTTP server) that creates a file meanwhile.
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status", encoding="ascii") as fh:
            line = next(x for x in fh if x.startswith("Umask:"))
        return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, mode: int | None = None) -> Iterator[Path]:
    """A temporary path beside `path` for a writer too large for memory (an archive, a
    converted disk image); renamed to `path` when the block ends, removed when it raises
    (Ctrl-C included), so `path` is never half-written. `mode` as in atomic_write."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode if mode is not None else with_umask(0o666))
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
