"""Which -display QEMU gets: Packer's `headless` rule, on hosts with and without a screen.

Packer's qemu builder opens a window (-display gtk, or `display`) unless `headless` is
true (then `display` is not used at all) or `use_default_display` leaves the choice to
QEMU. (Packer reads `display = "none"` as "unset", a quirk its source marks FIXME; here
it means no window.) packwrap does the same where a window can open: $DISPLAY or
$WAYLAND_DISPLAY is set and this QEMU has the display backend. Elsewhere it runs without
a window and says so once: a build never fails for want of a screen. packwrap types on
the serial console, so no window is ever needed.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from packwrap_qemu.config import QemuConfig


@dataclass(frozen=True)
class Display:
    value: str | None  # -display's value; None: QEMU's own default (use_default_display)
    note: str | None = None  # why no window opens although headless is false

    @property
    def windowless(self) -> bool:
        return self.value == "none"


@functools.lru_cache(maxsize=8)
def backends(binary: str) -> frozenset[str]:
    """The display backends this QEMU has (`-display help`); empty if it cannot say."""
    try:
        proc = subprocess.run(
            [binary, "-display", "help"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    lines = proc.stdout.splitlines()[1:]  # after "Available display backend types:"
    return frozenset(ln.strip() for ln in lines if ln.strip())


def choose(config: QemuConfig, env: Mapping[str, str] | None = None) -> Display:
    env = os.environ if env is None else env
    if config.headless or config.display == "none":
        return Display("none")
    if config.use_default_display and not config.display:
        return Display(None)
    wanted = config.display or "gtk"  # Packer's window
    if wanted.split(",")[0] in ("none", "egl-headless", "curses", "dbus", "vnc"):
        return Display(wanted)  # not a window: no screen needed (curses: a terminal)
    if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        why = "no $DISPLAY or $WAYLAND_DISPLAY"
    elif wanted.split(",")[0] not in backends(config.qemu_binary):
        why = f"{config.qemu_binary} has no {wanted.split(',')[0]} display (qemu-system-gui)"
    else:
        return Display(wanted)
    return Display("none", f"headless = false, but {why}: running without a window")
