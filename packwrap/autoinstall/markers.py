"""What OpenBSD's installer prints at the end of an autoinstall, for builders to watch.

The strings are install.sub's own messages; each is the
shortest stable prefix of the message, so a release that rewords the tail still matches.
Both builders read them from here.
"""

from __future__ import annotations

#: install.sub gave up: a failed autoinstall, an unanswered question, no response file.
FAILURE_MARKERS: tuple[str, ...] = (
    "failed; check /tmp/ai/ai.log",
    "Question has no answer in response file",
    "No response file found",  # the response file URL gave nothing (e.g. a 404)
)

#: Printed right before an autoinstall's final reboot: a guest that stops without it
#: crashed or was killed.
SUCCESS_MARKER = "CONGRATULATIONS!"


def failure_marker(console_text: str) -> str | None:
    """The first installer failure message found in `console_text`, or None."""
    return next((m for m in FAILURE_MARKERS if m in console_text), None)
