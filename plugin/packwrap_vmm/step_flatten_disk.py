"""The last step of a build provisioned on an overlay of a cached install: `vmctl create
-i <overlay> fmt:<temporary>` copies the overlay and its backing chain into a new
standalone image, renamed over `<out>/<vm_name>.<fmt>`; the overlay goes.

vmctl create -i (usr.sbin/vmctl/main.c 1.52 and 1.91, ctl_create / ctl_convert) works
without vmd, as its caller, so it runs as the user also with doas = true, like
step_create_disk.py. It opens the input through vmd's image code, which follows the
qcow2 backing chain, makes the destination of the input's size and copies every
non-zero 64k block: the result has no backing file. It leaves a half-written
destination behind when it fails: hence a temporary name (atomic_output), removed on
any failure or Ctrl-C, so the artifact path never holds a half-written image.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.sdk import PackwrapError, Step, atomic_output, must_flatten
from packwrap_vmm.config import config_of
from packwrap_vmm.step_create_disk import remove_unfinished
from packwrap_vmm.vmm import disk_path, driver

if TYPE_CHECKING:
    from packwrap.sdk import State

#: What vmctl create gives every image it makes (create_imagefile opens it 0600).
IMAGE_MODE = 0o600


class StepFlattenDisk(Step):
    name = "flatten disk"

    def __init__(self) -> None:
        self.made: Path | None = None

    def applies(self, state: State) -> bool:
        return must_flatten(state)

    def run(self, state: State) -> None:
        overlay = Path(state.data["disk_path"])
        final = disk_path(state)
        state.ui.say(f"Flattening {overlay} into {final} with vmctl create -i")
        with atomic_output(final, mode=IMAGE_MODE) as partial:
            partial.unlink()  # vmctl makes the file itself, refusing an existing one
            try:
                driver(state).convert(str(overlay), str(partial), config_of(state).disk_format)
            except PackwrapError:
                state.check_cancelled()  # Ctrl-C at the terminal ended vmctl too: say so
                raise
            state.check_cancelled()
        self.made = final
        overlay.unlink()
        state.data["disk_path"] = state.data["disk_image"] = str(final)

    def cleanup(self, state: State) -> None:
        # A build stopped after this step (Ctrl-C) leaves no image, as one stopped before.
        remove_unfinished(state, self.made)
        self.made = None
