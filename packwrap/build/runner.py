"""Run steps with a shared state; clean up in reverse; honour -on-error and -debug.

Semantics follow packer-plugin-sdk's BasicRunner: a step's cleanup is deferred
as soon as its run was *started*, so a step that fails half-way still cleans up
what it made. With -on-error=abort cleanups are skipped after a failure and the
user is told what is left behind; with -on-error=ask the user chooses.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from packwrap.build.state import State
from packwrap.build.step import Step
from packwrap.errors import Cancelled, PackwrapError

AskFn = Callable[[str], str]


def _default_ask(prompt: str) -> str:
    if not sys.stdin or not sys.stdin.isatty():
        return "c"
    try:
        return input(prompt)
    except EOFError:
        return "c"


def run_steps(steps: Sequence[Step], state: State, *, ask: AskFn = _default_ask) -> None:
    """Run `steps`; re-raise the first failure after cleanups (or Cancelled)."""
    started: list[Step] = []
    try:
        for step in steps:
            state.current_step = step.name
            state.check_cancelled()
            if state.options.debug:
                _debug_pause(state, f"before run of {step.name}", ask)
            started.append(step)
            while True:
                try:
                    step.run(state)
                    break
                except Cancelled:
                    raise
                except PackwrapError as exc:
                    if state.options.on_error == "ask" and not state.cancelled:
                        choice = (
                            ask(
                                f"Step {step.name!r} failed: {exc}\n"
                                "[c] Clean up and exit, [a] abort without cleanup, or [r] retry step? "
                            )
                            .strip()
                            .lower()
                        )
                        if choice.startswith("r"):
                            continue
                        if choice.startswith("a"):
                            state.options.on_error = "abort"
                    raise
            state.check_cancelled()
    except BaseException as exc:
        state.halted = not isinstance(exc, Cancelled | KeyboardInterrupt)
        if isinstance(exc, KeyboardInterrupt):
            state.cancel_event.set()
            exc = Cancelled(f"interrupted during {state.current_step}")
        state.error = exc
        if state.options.on_error == "abort":
            state.ui.error(
                f"Build failed during {state.current_step!r}; -on-error=abort: "
                "skipping cleanup, leaving the VM and files for inspection."
            )
            _report_leftovers(state)
        else:
            _cleanup(started, state)
        if exc is state.error and not isinstance(exc, PackwrapError):
            raise
        raise exc from None
    else:
        _cleanup(started, state)


def _cleanup(started: list[Step], state: State) -> None:
    for step in reversed(started):
        if state.options.debug:
            _debug_pause(state, f"before cleanup of {step.name}", _default_ask)
        try:
            step.cleanup(state)
        except Exception as exc:  # a failing cleanup must not hide the others
            state.ui.error(f"cleanup of {step.name!r} failed: {exc}")


def _report_leftovers(state: State) -> None:
    for hint in state.data.get("cleanup_hints", []):
        state.ui.error(f"left for inspection: {hint}")


def _debug_pause(state: State, what: str, ask: AskFn) -> None:
    state.ui.say(f"Pausing {what}. Press enter to continue.")
    ask("")
