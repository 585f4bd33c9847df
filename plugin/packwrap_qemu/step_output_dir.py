"""Output directory: refuse an existing one unless -force; remove it if the build fails."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.build.step import Step
from packwrap.errors import PackwrapError
from packwrap_qemu.config import names

if TYPE_CHECKING:
    from packwrap.build.state import State


def _refuse_precious(out: Path, state: State) -> None:
    """Never let -force (or a failed build) delete the working or template directory."""
    here = Path.cwd().resolve()
    precious = {here, *here.parents, Path(state.template_dir).resolve()}
    if out.resolve() in precious:
        raise PackwrapError(
            f"output_directory {str(out)!r} is the working or template directory (or holds "
            "it); packwrap deletes the output directory on -force and on failure"
        )


class StepPrepareOutputDir(Step):
    name = "prepare output directory"

    def __init__(self) -> None:
        self.created = False

    def run(self, state: State) -> None:
        vm_name, out = names(state.config, state.source_name)
        state.data["vm_name"] = vm_name
        state.data["output_dir"] = out
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
        self.created = True
        state.data.setdefault("cleanup_hints", []).append(
            f"output directory: rm -r {out.resolve()}"
        )

    def cleanup(self, state: State) -> None:
        if not (self.created and state.failed):
            return
        out = state.data["output_dir"]
        state.ui.say(f"Deleting output directory {out} (build did not finish)")
        for attempt in range(5):  # Packer retries too: a dying QEMU may still hold files
            try:
                shutil.rmtree(out)
                return
            except FileNotFoundError:
                return
            except OSError:
                if attempt == 4:
                    raise
                time.sleep(0.5)
