"""Wait for the guest to power off by itself (the installer's end), within shutdown_timeout.

QEMU's exit plus the QMP SHUTDOWN reason decide: guest-shutdown (power-off) or, under
-no-reboot, guest-reset (the installer's final reboot) mean success. The console is
watched too, so an installer that reports failure fails the build at once instead of
waiting out the timeout.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from packwrap.sdk import (
    BuildFailed,
    Step,
    console_tail,
    failure_marker,
    format_duration,
)
from packwrap_qemu.config import config_of

if TYPE_CHECKING:
    from packwrap.sdk import SerialConsole, State
    from packwrap_qemu.driver import QemuProcess

SUCCESS_REASONS = ("guest-shutdown", "guest-reset")
DEFAULT_TIMEOUT = 300.0
_POLL = 0.1


class StepWaitForPowerOff(Step):
    name = "wait for power-off"

    def run(self, state: State) -> None:
        vm: QemuProcess = state.data["qemu"]
        console: SerialConsole | None = state.data.get("console")
        timeout = config_of(state).shutdown_timeout or DEFAULT_TIMEOUT
        state.ui.say(f"Waiting for the guest to power off (timeout {format_duration(timeout)})")
        start = time.monotonic()
        deadline = start + timeout
        scanned = 0
        while vm.exit_code is None:
            scanned = self._check_console(console, scanned)
            if time.monotonic() >= deadline:
                raise BuildFailed(
                    f"Timeout while waiting for machine to shut down "
                    f"(shutdown_timeout {format_duration(timeout)})",
                    console_tail(console),
                )
            state.sleep(_POLL)  # raises Cancelled on Ctrl-C / SIGTERM
        self._check_console(console, scanned)
        rc, reason = vm.exit_code, vm.shutdown_reason()
        if rc != 0 or (reason is not None and reason not in SUCCESS_REASONS):
            why = f"QEMU exited with status {rc}" + (f" ({reason})" if reason else "")
            if rc != 0:
                why += f": {vm.stderr_tail()}"
            raise BuildFailed(why, console_tail(console))
        state.data["shutdown_reason"] = reason
        took = format_duration(time.monotonic() - start)
        state.ui.say(f"Guest powered off ({reason or 'QEMU exited'}) after {took}")

    @staticmethod
    def _check_console(console: SerialConsole | None, scanned: int) -> int:
        if console is None:
            return scanned
        mark = console.mark()
        # Re-scan a little overlap so a message split across two reads is still seen.
        text = console.text_since(max(0, scanned - 200))
        if failure_marker(text):
            # The installer prints a few lines around its failure: let them arrive so the
            # error shows the whole message, not a line cut mid-way.
            console.wait_quiet(0.5, 3.0)
            raise BuildFailed("the installer failed", console_tail(console))
        return mark
