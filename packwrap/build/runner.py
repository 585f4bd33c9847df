"""Run steps with a shared state; clean up in reverse; honour -on-error and -debug.

Semantics follow packer-plugin-sdk's BasicRunner: a step's cleanup is deferred
as soon as its run was *started*, so a step that fails half-way still cleans up
what it made. With -on-error=abort (and run-cleanup-provisioner) cleanups are
skipped after a failure or an interrupt and the user is told what is left behind
(state.data["cleanup_hints"]); with -on-error=ask the user chooses
clean up / abort / retry. Cleanups always run to the end: Ctrl-C during cleanup
only sets the cancel event again, so a cleanup must not rely on state.sleep()
(which raises once cancelled) -- use time.sleep or its own deadline.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

from packwrap.build.state import State
from packwrap.build.step import Step
from packwrap.build.ui import log_line
from packwrap.durations import format_duration
from packwrap.errors import Cancelled, PackwrapError

AskFn = Callable[[str], str]

ASK_PROMPT = "[c] Clean up and exit, [a] abort without cleanup, or [r] retry step (build may fail even if retry succeeds)? "  # noqa: E501


def default_ask(prompt: str) -> str:
    if not sys.stdin or not sys.stdin.isatty():
        return "c"
    try:
        return input(prompt)
    except EOFError:
        return "c"


def run_steps(steps: Sequence[Step], state: State, *, ask: AskFn = default_ask) -> None:
    """Run `steps`; re-raise the first failure after cleanups (Cancelled when interrupted)."""
    started: list[Step] = []
    try:
        for step in steps:
            state.current_step = step.name
            state.check_cancelled()
            if not step.applies(state):
                log_line(state.ui, f"step {step.name!r}: skipped")
                continue
            if state.options.debug:
                _debug_pause(state, f"before run of {step.name}", ask)
                state.check_cancelled()
            started.append(step)
            _run_one(step, state, ask)
            state.check_cancelled()
    except BaseException as original:
        exc: BaseException = original
        if isinstance(exc, KeyboardInterrupt):
            state.cancel_event.set()
            exc = Cancelled(f"interrupted during step {state.current_step!r}")
        state.halted = not isinstance(exc, Cancelled)
        state.error = exc
        if isinstance(exc, Cancelled):
            log_line(state.ui, f"build interrupted during step {state.current_step!r}")
        elif not isinstance(exc, PackwrapError):  # a PackwrapError was logged by _run_one
            log_line(state.ui, f"step {state.current_step!r} failed: {exc!r}")
        if state.options.on_error in ("abort", "run-cleanup-provisioner"):
            what = "interrupted during" if isinstance(exc, Cancelled) else "failed in"
            state.ui.error(
                f"Build {what} step {state.current_step!r}; -on-error=abort: skipping "
                "cleanup, leaving the VM and files for inspection."
            )
            _report_leftovers(state)
        else:
            _cleanup(started, state, ask)
        if exc is original:
            raise
        raise exc from None
    else:
        _cleanup(started, state, ask)


def _run_one(step: Step, state: State, ask: AskFn) -> None:
    while True:
        start = time.monotonic()
        log_line(state.ui, f"step {step.name!r}: start")
        try:
            step.run(state)
        except Cancelled:
            raise
        except PackwrapError as exc:
            log_line(
                state.ui,
                f"step {step.name!r}: failed after "
                f"{format_duration(time.monotonic() - start)}: {exc}",
            )
            if state.options.on_error == "ask" and not state.cancelled:
                state.ui.error(f"Step {step.name!r} failed: {exc}")
                choice = ask(ASK_PROMPT).strip().lower()
                if state.cancelled:
                    raise  # cancelled while asking: clean up (Packer does the same)
                if choice.startswith("r"):
                    state.ui.say(f"Retrying step {step.name!r}")
                    continue
                if choice.startswith("a"):
                    state.options.on_error = "abort"
            raise
        log_line(
            state.ui, f"step {step.name!r}: done in {format_duration(time.monotonic() - start)}"
        )
        return


def _cleanup(started: list[Step], state: State, ask: AskFn) -> None:
    for step in reversed(started):
        if state.options.debug:
            _debug_pause(state, f"before cleanup of {step.name}", ask)
        log_line(state.ui, f"step {step.name!r}: cleanup")
        try:
            step.cleanup(state)
        except Exception as exc:  # a failing cleanup must not hide the others
            state.ui.error(f"cleanup of {step.name!r} failed: {exc}")
        except KeyboardInterrupt:  # no handler installed: still finish the other cleanups
            state.cancel_event.set()
            state.ui.error(f"cleanup of {step.name!r} interrupted; continuing with the others")


def _report_leftovers(state: State) -> None:
    hints = state.data.get("cleanup_hints") or []
    if hints:
        state.ui.error("To clean up by hand:")
    for hint in hints:
        state.ui.error(f"  {hint}")


def _debug_pause(state: State, what: str, ask: AskFn) -> None:
    state.ui.say(f"Pausing {what}. Press enter to continue.")
    ask("")
