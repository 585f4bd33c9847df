"""A step is a run and a cleanup (packer-plugin-sdk multistep, in Python idiom).

`run` raises PackwrapError to halt the build (Cancelled when interrupted);
`cleanup` is called for every step whose run was started, in reverse order,
even after a failure or an interrupt, and must never raise for "nothing to do".
A step whose `applies(state)` is False is skipped whole: no run, no -debug pause, no
cleanup. `If(cond, step)` is the one way to make a step conditional.
"""

from __future__ import annotations

from collections.abc import Callable
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

    def applies(self, state: State) -> bool:
        """False: the runner skips this step (decided when its turn comes)."""
        return True


class If(Step):
    """`step`, run only when `cond(state)` holds when its turn comes.

    The condition is read at run time, so it may depend on what earlier steps found
    (e.g. whether the template has provisioners)."""

    def __init__(self, cond: Callable[[State], bool], step: Step):
        self.cond = cond
        self.step = step
        self.name = step.name

    def applies(self, state: State) -> bool:
        # An If around an If (or any step with its own rule) runs only when both hold.
        return bool(self.cond(state)) and self.step.applies(state)

    def run(self, state: State) -> None:
        self.step.run(state)

    def cleanup(self, state: State) -> None:
        self.step.cleanup(state)
