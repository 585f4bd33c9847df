"""Make the floppy image of floppy_files, floppy_dirs and floppy_content (Packer's
StepCreateFloppy): a 1.44 MB FAT image in a private temporary directory, attached as -fda."""

from __future__ import annotations

import glob
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.sdk import Step
from packwrap_qemu import qemu
from packwrap_qemu.config import config_of

if TYPE_CHECKING:
    from packwrap.sdk import State


def expand_globs(patterns: list[str]) -> list[Path]:
    """Packer's floppy_* entries are globs; a plain name is kept even if missing, so the
    copy names it."""
    out: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        out += [Path(m) for m in matches]
    return out


def floppy_files(patterns: list[str]) -> list[Path]:
    """floppy_files as Packer copies them: flat, a directory giving all its files."""
    out: list[Path] = []
    for path in expand_globs(patterns):
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file())
        else:
            out.append(path)
    return out


class StepCreateFloppy(Step):
    name = "create floppy"

    def __init__(self) -> None:
        self.tmp: str | None = None

    def run(self, state: State) -> None:
        config = config_of(state)
        if not (config.floppy_files or config.floppy_dirs or config.floppy_content):
            return
        self.tmp = tempfile.mkdtemp(prefix="packwrap-floppy-")
        image = Path(self.tmp) / "floppy.img"
        state.ui.say(f"Creating floppy disk ({config.floppy_label})")
        qemu.driver(state).make_floppy(
            image,
            floppy_files(config.floppy_files),
            expand_globs(config.floppy_dirs),  # each under its own name, as Packer's
            config.floppy_content,
            config.floppy_label,
        )
        state.data["floppy_path"] = image

    def cleanup(self, state: State) -> None:
        state.data.pop("floppy_path", None)
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
