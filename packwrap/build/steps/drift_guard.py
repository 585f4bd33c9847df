"""StepInstallerDriftGuard: check the installer's questions against the release data.

Run before the install starts; both builders' wait loops call `watch_installer` on each
poll. It reads the console transcript (throttled: a parse every half second), prints a
warning for each question no release data knows that was answered or took its default,
and fails the build at once, naming the question, the release and the data file, when
such a question has no answer (packwrap.autoinstall.drift).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from packwrap.build.step import Step

if TYPE_CHECKING:
    from packwrap.build.console import SerialConsole
    from packwrap.build.state import State

_EVERY = 0.5  # seconds between two parses of the transcript


class StepInstallerDriftGuard(Step):
    name = "installer drift guard"

    def run(self, state: State) -> None:
        from packwrap.autoinstall.drift import DriftGuard

        def response_for(url: str) -> str | None:
            server = state.data.get("http_server")
            if server is None:
                return None
            found, _ = server.resolve(url)
            if isinstance(found, bytes):
                return found.decode("utf-8", "replace")
            return found.read_text(encoding="utf-8", errors="replace") if found else None

        state.data["installer_guard"] = DriftGuard(response_for=response_for)
        state.data["installer_guard_next"] = 0.0

    def cleanup(self, state: State) -> None:
        state.data.pop("installer_guard", None)


def watch_installer(state: State, console: SerialConsole | None, *, force: bool = False) -> None:
    """One look at the transcript (at most every half second unless `force`)."""
    guard = state.data.get("installer_guard")
    if guard is None or console is None:
        return
    now = time.monotonic()
    if not force and now < state.data.get("installer_guard_next", 0.0):
        return
    state.data["installer_guard_next"] = now + _EVERY
    for warning in guard.check(console.text(), quiet_for=console.idle_seconds()):
        state.ui.say(f"Warning: {warning}")
