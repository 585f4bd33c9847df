"""StepTypeBootCommand: boot_wait once, then wait for the console and type each element.

For element i of boot_command: if boot_expect[i] is set, wait for that text on the
serial console (boot_expect_timeout; the error carries the console's last lines),
then type the element. Lines typed are echo-checked before Enter is pressed
(erase with ^U and retype on a mismatch, 3 tries) unless boot_echo_check = false
or the element is listed in boot_secret_elements (those are also masked in logs).
Needs state.data["console"] (a SerialConsole); template data from state.data
"http_ip", "http_guest_port"/"http_port", "vm_name".
Packer joins the elements before parsing; packwrap parses each element on its own
(it waits between them), so a `<...>` tag split across two elements is typed literally.
boot_keygroup_interval pauses between elements.
"""

from __future__ import annotations

from packwrap.build import bootcommand
from packwrap.build.bootcommand import Send, Wait
from packwrap.build.common_options import (
    boot_wait_seconds,
    key_interval_seconds,
    keygroup_interval_seconds,
)
from packwrap.build.console import SerialConsole
from packwrap.build.state import State, config_of
from packwrap.build.step import Step
from packwrap.build.steps.http_server import template_data
from packwrap.build.ui import log_line
from packwrap.durations import format_duration
from packwrap.errors import PackwrapError
from packwrap.masking import SENSITIVE


class StepTypeBootCommand(Step):
    name = "boot command"

    def __init__(self, config: object = None) -> None:  # config: accepted, read from state
        pass

    def run(self, state: State) -> None:
        config = config_of(state)
        commands = config.boot_command
        console = state.data.get("console")
        if not isinstance(console, SerialConsole):
            raise PackwrapError("internal: no serial console in the state for the boot command")
        secrets_idx = set(config.boot_secret_elements)
        expects = config.boot_expect
        data = template_data(state)
        rendered = []
        for i, element in enumerate(commands):
            text = bootcommand.render(element, data, what=f"boot_command[{i}]")
            rendered.append(text)
            if i in secrets_idx:
                for chunk in _literal_runs(text):
                    console.add_secret(chunk)
                    add = getattr(state.ui, "add_secret", None)
                    if add is not None:
                        add(chunk)  # the build log masks it too

        wait = boot_wait_seconds(config)
        if wait > 0:
            state.ui.say(f"Waiting {format_duration(wait)} for boot...")
            state.sleep(wait)
        if not commands:
            return
        state.ui.say("Typing the boot command on the serial console...")
        interval = key_interval_seconds(config)
        group_pause = keygroup_interval_seconds(config)
        timeout = config.boot_expect_timeout
        echo = config.boot_echo_check
        for i, text in enumerate(rendered):
            state.check_cancelled()
            expect = expects[i] if i < len(expects) else ""
            if expect:
                log_line(state.ui, f"Waiting for {expect!r} before boot_command[{i}]")
                console.expect(expect, timeout, state.cancel_event)
            secret = i in secrets_idx
            shown = SENSITIVE if secret else console.mask(text)
            log_line(state.ui, f"Typing boot_command[{i}]: {shown}")
            echo = self._type(state, console, text, interval, echo, secret)
            if group_pause and i + 1 < len(rendered):
                state.sleep(group_pause)

    def _type(
        self,
        state: State,
        console: SerialConsole,
        text: str,
        interval: float,
        echo: bool,
        secret: bool,
    ) -> bool:
        actions = bootcommand.serial_actions(bootcommand.parse(text))
        line_keys: list[bytes] = []
        line_text: list[str] = []
        checkable = True

        def flush(enter: bytes) -> None:
            nonlocal echo, checkable
            still = console.type_line(
                line_keys,
                "".join(line_text),
                sleep=state.sleep,
                interval=interval,
                echo_check=echo and checkable,
                secret=secret,
                log=lambda m: log_line(state.ui, m),
                enter=enter,
            )
            if not still:
                echo = False
            line_keys.clear()
            line_text.clear()
            checkable = True

        for action in actions:
            if isinstance(action, Wait):
                # Packer flushes before a wait: send what is pending. Keys already sent
                # cannot be erased and retyped alone, so that line is not echo-checked.
                if line_keys:
                    checkable = False
                    flush(b"")
                    checkable = False  # the rest of the line follows keys already sent
                state.sleep(action.seconds)
                continue
            assert isinstance(action, Send)
            if action.data == b"\r":
                flush(b"\r")
                continue
            if not action.text:
                checkable = False  # a control key (tab, arrows, ^C): the echo is not text
            line_keys.append(action.data)
            line_text.append(action.text)
        if line_keys:
            flush(b"")
        return echo


def _literal_runs(text: str) -> list[str]:
    """Printable runs typed in a secret element (e.g. a password before <enter>)."""
    runs: list[str] = []
    current: list[str] = []
    for a in bootcommand.serial_actions(bootcommand.parse(text)):
        if isinstance(a, Send) and a.text:
            current.append(a.text)
            continue
        if current:
            runs.append("".join(current))
            current = []
    if current:
        runs.append("".join(current))
    return [r for r in runs if len(r) >= 3]  # shorter runs would mask ordinary text
