"""StepShutdown: shutdown_command over the communicator, else the driver's stop; bounded.

Builders pass two hooks so this one step serves QEMU and vmm alike:
`wait_stopped(seconds) -> bool` (True once the VM is gone) and `force_stop()`.
The Go vmm plugin's timeout could never fire; this one does, and says what it did.
"""

from __future__ import annotations

from collections.abc import Callable

from packwrap.build.state import State, config_of
from packwrap.build.step import Step
from packwrap.errors import PackwrapError


class StepShutdown(Step):
    name = "shutdown"

    def __init__(
        self,
        wait_stopped: Callable[[State, float], bool],
        force_stop: Callable[[State], None],
        request_stop: Callable[[State], None] | None = None,
    ):
        self.wait_stopped = wait_stopped
        self.force_stop = force_stop
        self.request_stop = request_stop

    def run(self, state: State) -> None:
        cfg = config_of(state)
        timeout = cfg.shutdown_timeout or 300.0
        command = cfg.shutdown_command
        comm = state.data.get("communicator")
        if command and comm is not None:
            state.ui.say(f"Gracefully halting the guest: {command}")
            status = comm.run(command, on_output=state.ui.message)
            if status not in (0, -1):  # -1: the guest dropped the link while halting
                raise PackwrapError(f"shutdown_command exited with status {status}")
            comm.close()
            state.data.pop("communicator", None)
        elif self.request_stop is not None:
            state.ui.say("Asking the VM to stop")
            self.request_stop(state)
        else:
            state.ui.say("No shutdown_command: stopping the VM")
            self.force_stop(state)
            return
        state.ui.say(f"Waiting up to {timeout:.0f}s for the guest to power off...")
        if self.wait_stopped(state, timeout):
            return
        state.ui.error(f"Guest did not power off within {timeout:.0f}s: stopping it by force")
        self.force_stop(state)
        raise PackwrapError(
            f"timeout while waiting for the machine to shut down ({timeout:.0f}s); "
            "the VM was stopped by force"
        )
