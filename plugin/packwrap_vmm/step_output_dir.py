"""Output directory: create it; refuse an existing `<out>/<vm_name>.<fmt>` unless -force.

The Go plugin meant to do the same but checked `<out>/<name>/<fmt>`, so its check
never fired (packer.md §1.4). An existing directory is fine (as in the Go plugin);
one this build created is removed again if the build fails and it is left empty.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.build.step import Step
from packwrap.errors import PackwrapError

if TYPE_CHECKING:
    from packwrap.build.state import State


def disk_path(state: State) -> Path:
    cfg = state.config
    out = Path(os.path.expanduser(cfg.output_directory))
    return (out / f"{cfg.vm_name}.{cfg.disk_format}").absolute()


class StepOutputDir(Step):
    name = "output directory"

    def __init__(self) -> None:
        self.created: Path | None = None

    def run(self, state: State) -> None:
        cfg = state.config
        state.data["vm_name"] = cfg.vm_name
        disk = disk_path(state)
        out = disk.parent
        state.data["output_dir"] = str(out)
        if out.is_dir():
            state.ui.say(f"Output directory {out} already exists, using it")
        else:
            out.mkdir(parents=True)
            self.created = out
        if disk.exists():
            if not state.options.force:
                raise PackwrapError(f"image {disk} already exists; use -force to replace it")
            state.ui.say(f"Deleting previous image {disk} (-force)")
            disk.unlink()

    def cleanup(self, state: State) -> None:
        if self.created is not None and state.failed:
            with contextlib.suppress(OSError):
                self.created.rmdir()  # only if empty: never delete what we did not make
