"""Wait for the installer to finish: the VM disappears when the guest reboots.

vmd terminates a VM started with a forced boot device (-B) when the guest reboots,
and autoinstall(8) always ends with a reboot (autoinstall(8)). So the
install is over when `vmctl status NAME` no longer lists the VM as running. The Go
plugin polled every 5 s forever and ignored Ctrl-C; here the poll is every second,
limited by install_timeout, cancellable, and it fails fast when the console shows
the installer's own failure message (with the console's last lines). A VM that stops
without the installer's success banner on the console (killed, crashed) fails too.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from packwrap.sdk import (
    SUCCESS_MARKER,
    BuildFailed,
    Step,
    console_tail,
    failure_marker,
    format_duration,
    watch_installer,
)
from packwrap_vmm.config import config_of
from packwrap_vmm.vmm import driver

if TYPE_CHECKING:
    from packwrap.sdk import SerialConsole, State


def _reported_success(console: SerialConsole, grace: float = 2.0) -> bool:
    """The success banner is on the console; the reader may still be draining the pty
    of a VM that just ended, so give it a moment before deciding."""
    deadline = time.monotonic() + grace
    while SUCCESS_MARKER not in console.text():
        if console.eof or time.monotonic() >= deadline:
            return SUCCESS_MARKER in console.text()
        time.sleep(0.1)
    return True


class StepWaitInstall(Step):
    name = "wait for install"

    def __init__(self, poll_interval: float = 1.0):
        self.poll_interval = poll_interval

    def run(self, state: State) -> None:
        cfg = config_of(state)
        name = cfg.vm_name
        timeout = float(cfg.get("install_timeout") or 3600.0)
        console = state.data.get("console")
        # Everything this boot printed: the installer may fail while the boot command is
        # still being typed, before this step starts.
        mark = 0
        drv = driver(state)
        state.ui.say(
            f"Waiting for the install to finish (VM {name} stops when the installer "
            f"reboots; timeout {format_duration(timeout)})"
        )
        start = time.monotonic()
        while True:
            state.check_cancelled()
            if console is not None:
                watch_installer(state, console)
                text = console.text_since(mark)
                marker = failure_marker(text)
                if marker:
                    console.wait_quiet(0.5, 3.0)  # the rest of the failure message
                    watch_installer(state, console, force=True)  # names an unknown question
                    raise BuildFailed(
                        f"the installer failed ({marker!r} on the console); see "
                        f"{state.data.get('console_log', 'the console log')}",
                        console_tail(console),
                    )
            row = drv.find(name)
            if row is None or not row.running:
                break
            if time.monotonic() - start >= timeout:
                raise BuildFailed(
                    f"the install did not finish within {format_duration(timeout)} "
                    f"(install_timeout): VM {name} is still running; stopping it",
                    console_tail(console),
                )
            state.sleep(self.poll_interval)
        watch_installer(state, console, force=True)
        if console is not None and not _reported_success(console):
            raise BuildFailed(
                f"VM {name} stopped before the installer reported success ({SUCCESS_MARKER!r} "
                "never appeared on the console): it crashed or was killed, the disk is "
                "incomplete",
                console_tail(console),
            )
        state.ui.say(
            f"Install finished: VM {name} stopped after {format_duration(time.monotonic() - start)}"
        )
        state.data.pop("vm_tty", None)
