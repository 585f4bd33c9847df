"""boot_wait counts from the guest's first words on the console, not from `vmctl start`.

Keys typed before the guest has opened its serial line are lost (the UART's FIFO is
cleared when the tty opens), so a template that types blind after `boot_wait` (the
seed demo: 5s, "A<enter>") depends on how fast the guest boots. The Go plugin hid
that with a fixed 3 s sleep after `vmctl start` plus boot_wait slept twice (13 s for
the demo). packwrap sleeps boot_wait once (the fix) but starts counting when the
console first shows output: a bsd.rd or vmm-bios prints at once, so this costs
nothing there and keeps blind templates working on a slow or loaded host. Templates
that wait for a prompt (boot_expect[0]) skip this.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from packwrap.sdk import Step
from packwrap_vmm.config import config_of

if TYPE_CHECKING:
    from packwrap.sdk import State

FIRST_OUTPUT_TIMEOUT = 60.0


class StepAwaitConsole(Step):
    name = "await console"

    def run(self, state: State) -> None:
        cfg = config_of(state)
        console = state.data.get("console")
        expects = cfg.get("boot_expect") or []
        if console is None or not cfg.get("boot_command") or (expects and expects[0]):
            return
        base = state.data.get("console_guest_from", 0)  # past cu's banner (doas console)
        if console.mark() > base:
            return
        state.ui.say("Waiting for the guest's first console output before boot_wait...")
        deadline = time.monotonic() + FIRST_OUTPUT_TIMEOUT
        while console.mark() == base and not console.eof and time.monotonic() < deadline:
            state.sleep(0.1)
        if console.mark() == base:
            state.ui.message(f"no console output in {FIRST_OUTPUT_TIMEOUT:.0f}s; typing anyway")
