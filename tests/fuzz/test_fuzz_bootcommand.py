"""Boot command parser, Go-template rendering and serial bytes: only PackwrapError, ever."""

from __future__ import annotations

import math

from hypothesis import example, given
from hypothesis import strategies as st

from packwrap.build import bootcommand as bc
from packwrap.errors import PackwrapError
from tests.fuzz._support import assert_ours, count

DATA = dict(bc.PLACEHOLDER_DATA)

# Shapes the grammar cares about: waits with Go durations, toggles, special keys,
# template actions, and the characters around them.
_NUM = st.one_of(
    st.integers(-5, 10**6).map(str),
    st.from_regex(r"-?[0-9]{1,400}(\.[0-9]{0,30})?", fullmatch=True),
)
_UNIT = st.sampled_from(["ns", "us", "µs", "μs", "ms", "s", "m", "h", "", "d", "S"])
_WAIT = st.builds(
    lambda parts: "<wait" + "".join(parts) + ">",
    st.lists(st.tuples(_NUM, _UNIT).map("".join), max_size=3),
)
_SPECIAL = st.builds(
    lambda k, a: f"<{k}{a}>",
    st.sampled_from(bc.SPECIAL_KEYS).map(lambda k: k.swapcase() if len(k) % 2 else k),
    st.sampled_from(["", "on", "off", "On", "OFF", "of"]),
)
_TOGGLE = st.builds(lambda c, a: f"<{c}{a}>", st.characters(), st.sampled_from(["on", "off", "ON"]))
_ACTION = st.builds(
    lambda lt, body, rt: "{{" + lt + body + rt + "}}",
    st.sampled_from(["", "-", "- "]),
    st.one_of(
        st.sampled_from(
            [" .HTTPIP ", ".HTTPPort", " .Name", ".VMName ", ".SSHPublicKey", " .Nope "]
        ),
        st.text(max_size=8),
    ),
    st.sampled_from(["", "-", " -"]),
)
_PIECE = st.one_of(
    _WAIT,
    _SPECIAL,
    _TOGGLE,
    _ACTION,
    st.sampled_from(["<", ">", "<wait", "{{", "}}", "\n", "\r", "\x00", "\\", " ", "界", "\ud800"]),
    st.text(max_size=6),
)
BOOT_TEXT = st.lists(_PIECE, max_size=24).map("".join)


def _check_parsed(exprs: list) -> None:
    for e in exprs:
        assert isinstance(e, bc.Wait | bc.Key)
        if isinstance(e, bc.Wait):
            assert e.seconds > 0 and math.isfinite(e.seconds)


@given(BOOT_TEXT)
@example("<wait" + "9" * 400 + "s>")  # float overflow -> OverflowError in round()
@example("<wait" + "9" * 400 + ">")  # an infinite wait
@example("<wait" + "9" * 5000 + "ms>")
@example("\ud800")  # a lone surrogate (JSON templates can carry one)
@example("<leftAltOn>\ud800")
@example("<\ud800on>")  # a toggle of a surrogate
def test_parse_render_and_serial_bytes(text: str) -> None:
    count("bootcommand.parse+render+bytes")
    try:
        exprs = bc.parse(bc.render(text, DATA))
        _check_parsed(exprs)
        for action in bc.serial_actions(exprs):
            assert isinstance(action, bc.Send | bc.Wait)
    except PackwrapError as exc:
        assert_ours(exc)


@given(st.lists(BOOT_TEXT, max_size=6))
def test_validate_returns_problems_never_raises(commands: list[str]) -> None:
    count("bootcommand.validate")
    problems = bc.validate(commands)
    for p in problems:
        assert p and "\n" not in p


@given(st.text(max_size=60))
def test_arbitrary_text_to_bytes(text: str) -> None:
    count("bootcommand.to_bytes")
    try:
        assert isinstance(bc.to_bytes(text), bytes)
    except PackwrapError as exc:
        assert_ours(exc)


@given(BOOT_TEXT, st.dictionaries(st.sampled_from(bc.TEMPLATE_FIELDS), st.text(max_size=10)))
def test_render_with_arbitrary_field_values(text: str, data: dict[str, str]) -> None:
    count("bootcommand.render(data)")
    try:
        bc.render(text, data)
    except PackwrapError as exc:
        assert_ours(exc)


# --- the boot options as a builder prepares them -------------------------------------------

_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 5),
    st.text(max_size=5),
    st.sampled_from(["0", "1", "²", "٣", "-1", "1.5", "5m", "1e400", "9" * 30]),
)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "boot_command": st.one_of(st.lists(BOOT_TEXT, max_size=3), _ANY),
            "boot_expect": st.one_of(st.lists(st.text(max_size=5), max_size=4), _ANY),
            "boot_secret_elements": st.one_of(st.lists(_ANY, max_size=3), _ANY),
            "boot_wait": _ANY,
            "boot_key_interval": _ANY,
            "boot_keygroup_interval": _ANY,
            "boot_expect_timeout": _ANY,
            "boot_echo_check": _ANY,
        },
    )
)
@example({"boot_command": ["a"], "boot_secret_elements": ["²"]})  # int("²"): ValueError
@example({"boot_command": ["a"], "boot_secret_elements": ["9" * 5000]})
@example({"boot_expect_timeout": ""})  # parse_duration(""): IndexError
@example({"boot_wait": "9" * 400})  # a bare number of seconds beyond float: inf
def test_boot_options_answer_with_problems(values: dict) -> None:
    count("bootcommand.options")
    from packwrap.build.common_options import BOOT_CHECKS, BOOT_OPTIONS
    from packwrap.config.schema import Schema, SourceBody

    try:
        _config, problems, _warnings = Schema(BOOT_OPTIONS, BOOT_CHECKS).prepare(
            SourceBody(values, file="t.pkr.hcl", line=1)
        )
    except PackwrapError as exc:
        assert_ours(exc)
        return
    for p in problems:
        assert str(p.message) and "\n" not in p.message
