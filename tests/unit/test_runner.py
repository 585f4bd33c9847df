"""The step runner: reverse cleanup, failure, cancellation, -on-error, -debug."""

from __future__ import annotations

import threading

import pytest

from packwrap.build.runner import run_steps
from packwrap.build.state import State
from packwrap.build.step import Step
from packwrap.errors import Cancelled, PackwrapError
from tests.state_support import make_state


class Rec(Step):
    def __init__(self, name: str, events: list[str], fail: int = 0, action=None):
        self.name = name
        self.events = events
        self.fail = fail  # fail this many times
        self.action = action

    def run(self, state: State) -> None:
        self.events.append(f"run {self.name}")
        if self.action:
            self.action(state)
        if self.fail:
            self.fail -= 1
            raise PackwrapError(f"{self.name} broke")

    def cleanup(self, state: State) -> None:
        self.events.append(f"cleanup {self.name}")


def test_cleanup_in_reverse_after_success(state: State) -> None:
    ev: list[str] = []
    run_steps([Rec("a", ev), Rec("b", ev), Rec("c", ev)], state)
    assert ev == ["run a", "run b", "run c", "cleanup c", "cleanup b", "cleanup a"]
    assert not state.failed


def test_failed_step_is_cleaned_up_and_later_steps_never_run(state: State) -> None:
    ev: list[str] = []
    with pytest.raises(PackwrapError, match="b broke"):
        run_steps([Rec("a", ev), Rec("b", ev, fail=1), Rec("c", ev)], state)
    assert ev == ["run a", "run b", "cleanup b", "cleanup a"]
    assert state.halted and state.failed
    assert [m for m in state.ui.logs if "failed" in m] == ["step 'b': failed after 0.0s: b broke"]


def test_cancel_during_a_step_cleans_up_everything_started(state: State) -> None:
    ev: list[str] = []

    def interrupted(s: State) -> None:
        threading.Timer(0.05, s.cancel_event.set).start()
        s.sleep(10)  # wakes at once on cancel

    with pytest.raises(Cancelled, match="interrupted"):
        run_steps([Rec("a", ev), Rec("wait", ev, action=interrupted), Rec("c", ev)], state)
    assert ev == ["run a", "run wait", "cleanup wait", "cleanup a"]
    assert state.cancelled and not state.halted and state.failed
    assert any("interrupted during step 'wait'" in m for m in state.ui.logs)


def test_keyboard_interrupt_becomes_cancelled_with_cleanup(state: State) -> None:
    ev: list[str] = []

    def boom(s: State) -> None:
        raise KeyboardInterrupt

    with pytest.raises(Cancelled):
        run_steps([Rec("a", ev), Rec("b", ev, action=boom)], state)
    assert ev == ["run a", "run b", "cleanup b", "cleanup a"]


def test_cancel_between_steps(state: State) -> None:
    ev: list[str] = []
    with pytest.raises(Cancelled):
        run_steps([Rec("a", ev, action=lambda s: s.cancel_event.set()), Rec("b", ev)], state)
    assert ev == ["run a", "cleanup a"]


def test_failing_cleanup_does_not_hide_others(state: State) -> None:
    ev: list[str] = []

    class Bad(Rec):
        def cleanup(self, state: State) -> None:
            raise PackwrapError("cannot remove disk")

    run_steps([Rec("a", ev), Bad("b", ev), Rec("c", ev)], state)
    assert ev == ["run a", "run b", "run c", "cleanup c", "cleanup a"]
    assert "cleanup of 'b' failed: cannot remove disk" in state.ui.errors


def test_abort_skips_cleanup_and_prints_hints() -> None:
    ev: list[str] = []
    state = make_state(on_error="abort")
    state.data["cleanup_hints"] = ["kill 1234  # the QEMU process", "rm -r output-t"]
    with pytest.raises(PackwrapError):
        run_steps([Rec("a", ev), Rec("b", ev, fail=1)], state)
    assert ev == ["run a", "run b"]
    assert "  kill 1234  # the QEMU process" in state.ui.errors
    assert "  rm -r output-t" in state.ui.errors


def test_abort_skips_cleanup_on_cancel_too() -> None:
    ev: list[str] = []
    state = make_state(on_error="abort")
    with pytest.raises(Cancelled):
        run_steps([Rec("a", ev, action=lambda s: s.cancel_event.set()), Rec("b", ev)], state)
    assert ev == ["run a"]


def test_abort_still_cleans_up_a_successful_build() -> None:
    ev: list[str] = []
    run_steps([Rec("a", ev)], make_state(on_error="abort"))
    assert ev == ["run a", "cleanup a"]


def test_ask_retry_then_success() -> None:
    ev: list[str] = []
    answers = iter(["r"])
    state = make_state(on_error="ask")
    run_steps([Rec("a", ev), Rec("b", ev, fail=1)], state, ask=lambda p: next(answers))
    assert ev == ["run a", "run b", "run b", "cleanup b", "cleanup a"]


@pytest.mark.parametrize(
    ("answer", "cleaned"), [("c", True), ("", True), ("a", False), ("abort", False)]
)
def test_ask_cleanup_or_abort(answer: str, cleaned: bool) -> None:
    ev: list[str] = []
    prompts: list[str] = []
    state = make_state(on_error="ask")

    def ask(p: str) -> str:
        prompts.append(p)
        return answer

    with pytest.raises(PackwrapError):
        run_steps([Rec("a", ev), Rec("b", ev, fail=5)], state, ask=ask)
    assert ("cleanup a" in ev) is cleaned
    assert prompts[0].startswith("[c] Clean up and exit, [a] abort without cleanup, or [r] retry")


def test_ask_is_not_offered_on_cancel() -> None:
    ev: list[str] = []
    state = make_state(on_error="ask")

    def cancel(s: State) -> None:
        s.cancel_event.set()
        s.check_cancelled()

    with pytest.raises(Cancelled):
        run_steps([Rec("a", ev, action=cancel)], state, ask=lambda p: pytest.fail("asked"))
    assert ev == ["run a", "cleanup a"]


def test_debug_pauses_before_each_run_and_cleanup() -> None:
    ev: list[str] = []
    state = make_state(debug=True)
    asked: list[str] = []
    run_steps([Rec("a", ev), Rec("b", ev)], state, ask=lambda p: asked.append(p) or "")
    pauses = [m for m in state.ui.lines if m.startswith("Pausing")]
    assert pauses == [
        "Pausing before run of a. Press enter to continue.",
        "Pausing before run of b. Press enter to continue.",
        "Pausing before cleanup of b. Press enter to continue.",
        "Pausing before cleanup of a. Press enter to continue.",
    ]
    assert len(asked) == 4


def test_bug_in_a_step_is_reraised_after_cleanup() -> None:
    ev: list[str] = []

    def bug(s: State) -> None:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        run_steps([Rec("a", ev), Rec("b", ev, action=bug)], make_state())
    assert ev == ["run a", "run b", "cleanup b", "cleanup a"]


@pytest.mark.parametrize(
    ("cancel", "words"), [(False, "failed in step 'b'"), (True, "interrupted during step 'b'")]
)
def test_abort_message_says_failed_or_interrupted(cancel: bool, words: str) -> None:
    ev: list[str] = []
    state = make_state(on_error="abort")

    def act(s: State) -> None:
        if cancel:
            s.cancel_event.set()
            s.check_cancelled()
        raise PackwrapError("x")

    with pytest.raises(PackwrapError):
        run_steps([Rec("a", ev), Rec("b", ev, action=act)], state)
    assert any(words in line and "-on-error=abort" in line for line in state.ui.lines)
