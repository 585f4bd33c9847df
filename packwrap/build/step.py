"""A step is a run and a cleanup (packer-plugin-sdk multistep, in Python idiom).

`run` raises PackwrapError to halt the build (Cancelled when interrupted);
`cleanup` is called for every step whose run was started, in reverse order,
even after a failure or an interrupt, and must never raise for "nothing to do".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packwrap.build.state import State


class Step:
    #: Short name shown by -debug pauses and in "interrupted during <name>" messages.
    name: str = "step"

    def run(self, state: State) -> None:
        raise NotImplementedError

    def cleanup(self, state: State) -> None:  # noqa: B027 - optional hook
        pass
