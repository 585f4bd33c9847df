"""Archives and compressed files, their format told by the output's name.

The rule is Packer's compress post-processor's (post-processor/compress in
hashicorp/packer): the last two `.ext` groups of the name (lowercase letters and
digits) decide; `tar` or `zip` last is that archive uncompressed; `tar` before a known
compression is a compressed tar; a known compression alone compresses the one input
file; no group or an unknown one is a gzipped tar, the name left as it is. packwrap adds
`.xz` and `.zst` to Packer's `.gz`, `.bgzf` and `.lz4`.

Tar archives are GNU tar's (oldgnu format, sparse files kept sparse: a raw disk's holes
take no room, as Google Compute Engine's import asks); gzip and xz are the standard
library's, zstd, lz4 and bgzf the Debian programs' (tools.PACKAGES).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from packwrap.childproc import end
from packwrap.errors import PackwrapError
from packwrap.postprocess.tools import failure

if TYPE_CHECKING:
    from packwrap.postprocess.base import PPContext

#: extension -> compression
COMPRESSIONS = {"gz": "gzip", "bgzf": "bgzf", "lz4": "lz4", "xz": "xz", "zst": "zstd"}
#: compression done by a program rather than the standard library -> that program
PROGRAMS = {"zstd": "zstd", "lz4": "lz4", "bgzf": "bgzip"}
DEFAULT_LEVEL = 6  # gzip's default, and Packer's
_EXTENSION = re.compile(r"\.([a-z0-9]+)")
_BLOCK = 1 << 20


class Sink(Protocol):
    """Where the bytes go: a compressing stream or a compressor's stdin."""

    def write(self, data: bytes, /) -> object: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ArchiveFormat:
    archive: str | None  # "tar", "zip", or None: the one input file, compressed
    compression: str | None  # a COMPRESSIONS value, or None

    def programs(self) -> list[str]:
        """The host programs this format needs."""
        needed = ["tar"] if self.archive == "tar" else []
        if self.compression in PROGRAMS:
            needed.append(PROGRAMS[self.compression])
        return needed


def detect(output: str, fmt: str = "") -> ArchiveFormat:
    """The format of `output` (its file name), or of `output.fmt` when `fmt` is set."""
    name = os.path.basename(output)
    groups = _EXTENSION.findall(f"{name}.{fmt}" if fmt else name)
    if not groups:
        return ArchiveFormat("tar", "gzip")
    last = groups[-1]
    before = groups[-2] if len(groups) > 1 else ""
    if last in ("tar", "zip"):
        return ArchiveFormat(last, None)
    if last in COMPRESSIONS:
        return ArchiveFormat("tar" if before == "tar" else None, COMPRESSIONS[last])
    return ArchiveFormat("tar", "gzip")


def compression_level(value: int | None) -> int:
    """Packer's rule: unset, 0 and -1 are the default (6), above 9 is 9; below -1 is an
    error (ValueError)."""
    if value is None or value in (0, -1):
        return DEFAULT_LEVEL
    if value < -1:
        raise ValueError("expected an integer from 1 to 9")
    return min(value, 9)


def write_archive(
    fmt: ArchiveFormat, files: list[Path], dest: Path, level: int, ctx: PPContext, what: str
) -> None:
    """Write `files` to `dest` in `fmt` (members by base name); Ctrl-C stops it."""
    names = [f.name for f in files]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate and fmt.archive:
        raise PackwrapError(f"{what}: two input files are both named {duplicate!r}")
    if fmt.archive is None and len(files) != 1:
        raise PackwrapError(
            f"{what}: can only have 1 input file when not using tar/zip; found "
            f"{len(files)}: {', '.join(map(str, files))}"
        )
    if fmt.archive == "zip":
        _write_zip(files, dest, level, ctx, what)
        return
    children: list[subprocess.Popen[bytes]] = []
    try:
        with open(dest, "wb") as out:
            sink = _compressor(fmt.compression, out, level, children)
            if fmt.archive == "tar":
                tar = _popen(_tar_argv(files), stdout=subprocess.PIPE)
                children.insert(0, tar)
                assert tar.stdout is not None
                _copy(tar.stdout, sink, ctx, what)
            else:
                with open(files[0], "rb") as source:
                    _copy(source, sink, ctx, what)
            sink.close()
        _check_children(children, what)
    except OSError as exc:
        _check_children(children, what, patience=1.0)  # a program that died is the cause
        raise PackwrapError(f"{what}: {exc.filename or dest}: {exc.strerror}") from None
    finally:
        for child in children:
            end(child)


def _check_children(
    children: list[subprocess.Popen[bytes]], what: str, patience: float | None = None
) -> None:
    """Raise with the first program that failed; `patience`: how long to wait for each
    (None: to its end), one still running then is skipped."""
    for child in children:
        if child.stdin:
            with contextlib.suppress(OSError):  # a compressor that died: its pipe is broken
                child.stdin.close()
        try:
            child.wait(patience)
        except subprocess.TimeoutExpired:
            continue
        if child.returncode != 0:
            err = child.stderr.read().decode("utf-8", "replace") if child.stderr else ""
            raise PackwrapError(f"{what}: {failure(str(child.args[0]), child.returncode, err)}")  # type: ignore[index]


def _tar_argv(files: list[Path]) -> list[str]:
    argv = ["tar", "--create", "--file=-", "--format=oldgnu", "--sparse", "--dereference"]
    for f in files:
        # --add-file: a name that starts with '-' is still a file name
        argv += ["-C", str(f.parent.resolve()), f"--add-file={f.name}"]
    return argv


def _popen(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(argv, stderr=subprocess.PIPE, **kwargs)  # type: ignore[call-overload]
    except OSError as exc:
        raise PackwrapError(f"cannot run {argv[0]}: {exc.strerror}") from None


def _compressor(
    compression: str | None, out: IO[bytes], level: int, children: list[subprocess.Popen[bytes]]
) -> Sink:
    """A writable stream that compresses into `out` (the program, if any, in `children`)."""
    if compression is None:
        return _Unclosed(out)
    if compression == "gzip":
        import gzip  # here: the post-processor registry imports this module at validate

        # no name and no time in the header: the same input gives the same bytes
        return gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=level, mtime=0)
    if compression == "xz":
        import lzma

        return lzma.LZMAFile(out, "wb", preset=level)
    argv = {
        "zstd": ["zstd", "-q", f"-{level}", "-c"],
        # Packer's lz4 writer switches to high compression above the default level
        "lz4": ["lz4", "-q", "-9" if level > DEFAULT_LEVEL else "-1", "-c"],
        "bgzf": ["bgzip", "-c", "-l", str(level)],
    }[compression]
    proc = _popen(argv, stdin=subprocess.PIPE, stdout=out)
    children.append(proc)
    assert proc.stdin is not None
    return proc.stdin


class _Unclosed:
    """`out` itself, whose close() is left to its `with`."""

    def __init__(self, out: IO[bytes]):
        self.write = out.write

    def close(self) -> None:
        pass


def _copy(source: IO[bytes], sink: Sink, ctx: PPContext, what: str) -> None:
    for block in iter(lambda: source.read(_BLOCK), b""):
        ctx.check_cancelled(what)
        sink.write(block)


def _write_zip(files: list[Path], dest: Path, level: int, ctx: PPContext, what: str) -> None:
    import zipfile

    try:
        with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
            for f in files:
                info = zipfile.ZipInfo.from_file(f, f.name)
                info.compress_type = zipfile.ZIP_DEFLATED
                large = f.stat().st_size >= zipfile.ZIP64_LIMIT
                with open(f, "rb") as source, archive.open(info, "w", force_zip64=large) as sink:
                    _copy(source, sink, ctx, what)
    except OSError as exc:
        raise PackwrapError(f"{what}: {exc.filename or dest}: {exc.strerror}") from None
