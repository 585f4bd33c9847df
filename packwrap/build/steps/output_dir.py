"""StepOutputDir: make the build's output directory; refuse to overwrite without -force.

One step, the two policies builders have:
- Packer's (image=None, the qemu builder): the directory itself must not exist;
  -force deletes it first (never the working or template directory), and a directory
  this build made is deleted again when the build fails.
- An image file in a shared directory (image=<path>, the vmm builder, as the Go plugin
  meant it): an existing directory is used as it is; only the image must not exist
  (-force deletes that file); a directory this build made is removed again on failure
  only if it is left empty, so nothing this build did not make is ever deleted.
Puts: "vm_name", "output_dir" (a Path).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packwrap.build.state import State
from packwrap.build.step import Step
from packwrap.errors import PackwrapError


@dataclass(frozen=True)
class OutputPlan:
    """Where a build writes: its VM name, its directory and (shared directory) its image."""

    vm_name: str
    directory: Path
    image: Path | None = None


def _refuse_precious(out: Path, state: State) -> None:
    """Never let -force (or a failed build) delete the working or template directory."""
    here = Path.cwd().resolve()
    precious = {here, *here.parents, Path(state.template_dir).resolve()}
    if out.resolve() in precious:
        raise PackwrapError(
            f"output_directory {str(out)!r} is the working or template directory (or holds "
            "it); packwrap deletes the output directory on -force and on failure"
        )


def _remove_tree(out: Path) -> None:
    for attempt in range(5):  # Packer retries too: a dying VM may still hold files
        try:
            shutil.rmtree(out)
            return
        except FileNotFoundError:
            return
        except OSError:
            if attempt == 4:
                raise
            time.sleep(0.5)


class StepOutputDir(Step):
    name = "output directory"

    def __init__(self, plan: Callable[[State], OutputPlan], *, name: str | None = None):
        self.plan = plan
        if name:
            self.name = name
        self.created: Path | None = None
        self.shared = False

    def run(self, state: State) -> None:
        plan = self.plan(state)
        out = plan.directory
        state.data["vm_name"] = plan.vm_name
        state.data["output_dir"] = out
        self.shared = plan.image is not None
        if plan.image is not None:
            self._prepare_shared(state, out, plan.image)
        else:
            self._prepare_own(state, out)

    def _prepare_own(self, state: State, out: Path) -> None:
        if out.exists():
            _refuse_precious(out, state)
            if not state.options.force:
                raise PackwrapError(
                    f"output directory {out} already exists; use -force to delete it "
                    "before building"
                )
            state.ui.say(f"Deleting previous output directory {out} (-force)")
            shutil.rmtree(out)
        out.mkdir(parents=True)
        self.created = out
        state.data.setdefault("cleanup_hints", []).append(
            f"output directory: rm -r {out.resolve()}"
        )

    def _prepare_shared(self, state: State, out: Path, image: Path) -> None:
        if out.is_dir():
            state.ui.say(f"Output directory {out} already exists, using it")
        else:
            out.mkdir(parents=True)
            self.created = out
        if image.exists():
            if not state.options.force:
                raise PackwrapError(f"image {image} already exists; use -force to replace it")
            state.ui.say(f"Deleting previous image {image} (-force)")
            image.unlink()

    def cleanup(self, state: State) -> None:
        if self.created is None or not state.failed:
            return
        if self.shared:
            with contextlib.suppress(OSError):
                self.created.rmdir()  # only if empty: never delete what we did not make
            return
        state.ui.say(f"Deleting output directory {self.created} (build did not finish)")
        _remove_tree(self.created)
