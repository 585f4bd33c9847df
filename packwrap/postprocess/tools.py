"""The host programs post-processors run (tar, zstd, lz4, bgzip, qemu-img): found on PATH
(a missing one is named with its Debian package at validate time), run through
packwrap/childproc.py (the build's cancel event watched), their error quoted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.build.artifact import Artifact
from packwrap.childproc import Cancel, run_child
from packwrap.errors import PackwrapError

if TYPE_CHECKING:
    from packwrap.postprocess.base import PPContext

#: program -> the Debian package that installs it (scripts/setup installs them all).
PACKAGES = {
    "tar": "tar",
    "zstd": "zstd",
    "lz4": "lz4",
    "bgzip": "tabix",
    "qemu-img": "qemu-utils",
}


def missing_tool(program: str) -> str | None:
    """None when `program` is on PATH, else the one-line reason naming what to install."""
    if shutil.which(program):
        return None
    package = PACKAGES[program]
    return f"needs the program {program!r}, which is not on PATH (Debian package {package})"


def failure(program: str, returncode: int, stderr: str) -> str:
    """How a program failed: its last line of stderr, quoted, else its exit status."""
    lines = stderr.strip().splitlines()
    return f"{program} failed: {lines[-1] if lines else f'exit status {returncode}'}"


def run_tool(argv: list[str], ctx: PPContext, what: str) -> str:
    """Run a program to its end (Ctrl-C ends it), its stdout as text; a failure quotes
    its last line of stderr."""
    ctx.check_cancelled(what)
    out: list[str] = []
    done = run_child(
        argv, out.append, what=what, cancel=Cancel(ctx.cancel_event, what), separate_stderr=True
    )
    if done.status != 0:
        stderr = "\n".join(done.tail)
        raise PackwrapError(f"{what}: {failure(argv[0], done.status, stderr)}")
    return "".join(out)


def image_info(path: Path, ctx: PPContext, what: str) -> tuple[str, int]:
    """(format, virtual size in bytes) of a disk image, as qemu-img reads it."""
    out = run_tool(["qemu-img", "info", "--output=json", str(path)], ctx, what)
    info = json.loads(out)
    return str(info["format"]), int(info["virtual-size"])


def convert_image(
    src: Path, dst: Path, fmt: str, ctx: PPContext, what: str, options: str = ""
) -> None:
    argv = ["qemu-img", "convert", "-O", fmt]
    if options:
        argv += ["-o", options]
    run_tool([*argv, str(src), str(dst)], ctx, what)


def artifact_disk(artifact: Artifact, what: str) -> Path:
    """The disk image of a builder's artifact: the qemu builder's `diskPaths`, the file
    named by `diskName`, else the artifact's only file."""
    paths = artifact.state.get("diskPaths") or []
    if paths:
        return Path(paths[0])
    name = artifact.state.get("diskName")
    files = [Path(f) for f in artifact.files]
    if name:
        named = [f for f in files if f.name == name]
        if named:
            return named[0]
    if len(files) == 1:
        return files[0]
    raise PackwrapError(
        f"{what}: cannot tell which of the artifact's {len(files)} files is the disk image"
    )
