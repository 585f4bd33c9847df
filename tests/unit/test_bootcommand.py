"""The boot_command grammar (packer-plugin-sdk bootcommand) and serial bytes."""

from __future__ import annotations

import pytest

from packwrap.build import bootcommand as bc
from packwrap.build.bootcommand import OFF, ON, PRESS, Key, Wait
from packwrap.errors import PackwrapError


def lit(text: str) -> list[Key]:
    return [Key(c) for c in text]


def spec(name: str, action: str = PRESS) -> Key:
    return Key(name, True, action)


GRAMMAR_CASES = [
    # waits
    ("<wait>", [Wait(1.0)]),
    ("<wait5>", [Wait(5.0)]),
    ("<wait10>", [Wait(10.0)]),
    ("<wait20>", [Wait(20.0)]),
    ("<wait3s>", [Wait(3.0)]),
    ("<wait1m20s>", [Wait(80.0)]),
    ("<wait4m2ns>", [Wait(240.000000002)]),
    ("<wait1.5h>", [Wait(5400.0)]),
    ("<wait500ms>", [Wait(0.5)]),
    ("<wait10us>", [Wait(0.00001)]),
    ("<wait2µs>", [Wait(0.000002)]),
    # the keyword is case-sensitive: typed literally
    ("<WAIT>", lit("<WAIT>")),
    ("<Wait5>", lit("<Wait5>")),
    # not a duration: typed literally
    ("<wait5x>", lit("<wait5x>")),
    ("<wait05s>", lit("<wait05s>")),
    # special keys, case-insensitive, with On/Off
    ("<enter>", [spec("enter")]),
    ("<ENTER>", [spec("enter")]),
    ("<return>", [spec("return")]),
    ("<f1><f10><f12>", [spec("f1"), spec("f10"), spec("f12")]),
    ("<pageUp><PAGEDOWN>", [spec("pageup"), spec("pagedown")]),
    ("<leftCtrlOn>c<leftCtrlOff>", [spec("leftctrl", ON), Key("c"), spec("leftctrl", OFF)]),
    ("<leftAltoN><leftaltOFF>", [spec("leftalt", ON), spec("leftalt", OFF)]),
    ("<left><right><leftShift>", [spec("left"), spec("right"), spec("leftshift")]),
    ("<spacebar><menu><insert>", [spec("spacebar"), spec("menu"), spec("insert")]),
    ("<leftCommand><rightOption>", [spec("leftcommand"), spec("rightoption")]),
    # char toggles
    ("<fOn> b<fOff>", [Key("f", False, ON), Key(" "), Key("b"), Key("f", False, OFF)]),
    ("<cON><cOff>", [Key("c", False, ON), Key("c", False, OFF)]),
    # anything else in <...> is typed literally
    ("<foo>", lit("<foo>")),
    ("<f13>", lit("<f13>")),
    ("<>", lit("<>")),
    ("<<enter>", [Key("<"), spec("enter")]),
    ("a<b", lit("a<b")),
    ("foo/bar > one 界", lit("foo/bar > one 界")),
    ("<enteron>", [spec("enter", ON)]),
    ("<tab >", lit("<tab >")),
    ("", []),
]


@pytest.mark.parametrize(("text", "expected"), GRAMMAR_CASES)
def test_grammar(text: str, expected: list) -> None:
    assert bc.parse(text) == expected


def test_packer_sdk_ast_test_sequence() -> None:
    # The sequence of boot_command_ast_test.go in packer-plugin-sdk.
    text = (
        "<wait><wait20><wait3s><wait4m2ns>foo/bar > one 界<fOn> b<fOff>"
        "<f3><f12><spacebar><leftalt><rightshift><rightsuper>"
    )
    out = bc.parse(text)
    assert out[:4] == [Wait(1), Wait(20), Wait(3), Wait(240.000000002)]
    assert out[4:19] == lit("foo/bar > one 界")
    assert out[19:23] == [Key("f", False, ON), Key(" "), Key("b"), Key("f", False, OFF)]
    assert out[23:] == [
        spec("f3"),
        spec("f12"),
        spec("spacebar"),
        spec("leftalt"),
        spec("rightshift"),
        spec("rightsuper"),
    ]


@pytest.mark.parametrize("text", ["<wait0>", "<wait0s>", "<wait-1m>", "<wait-5s>", "x<wait-1.5h>"])
def test_non_positive_wait_is_an_error(text: str) -> None:
    with pytest.raises(PackwrapError, match="positive wait"):
        bc.parse(text)


# --- templates -----------------------------------------------------------------------

DATA = {"HTTPIP": "10.0.2.100", "HTTPPort": 80, "Name": "obsd", "VMName": "obsd"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://{{ .HTTPIP }}:{{ .HTTPPort }}/x", "http://10.0.2.100:80/x"),
        ("http://{{.HTTPIP}}:{{.HTTPPort}}/x", "http://10.0.2.100:80/x"),
        ("{{ .Name }}<enter>", "obsd<enter>"),
        ("a  {{- .Name -}}  b", "aobsdb"),
        ("no template", "no template"),
    ],
)
def test_render(text: str, expected: str) -> None:
    assert bc.render(text, DATA) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{{ .HTTPAddr }}", "unknown template field .HTTPAddr"),
        ("{{ user `x` }}", "unsupported template action"),
        ("{{ .HTTPIP", "unclosed"),
        ("{{ }}", "unsupported template action"),
    ],
)
def test_render_errors(text: str, match: str) -> None:
    with pytest.raises(PackwrapError, match=match):
        bc.render(text, DATA)


def test_validate_collects_every_problem_with_its_index() -> None:
    problems = bc.validate(["A<enter>", "<wait-1s>", "{{ .Nope }}", "ok"])
    assert len(problems) == 2
    assert problems[0].startswith("boot_command[1]: ")
    assert problems[1].startswith("boot_command[2]: unknown template field .Nope")


# --- serial bytes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "data"),
    [
        ("A<enter>", b"A\r"),
        ("<return>", b"\r"),
        ("<bs><del>", b"\x7f\x1b[3~"),
        ("<esc><tab><spacebar>", b"\x1b\t "),
        ("<up><down><right><left>", b"\x1b[A\x1b[B\x1b[C\x1b[D"),
        ("<home><end><insert><pageUp><pageDown>", b"\x1b[1~\x1b[4~\x1b[2~\x1b[5~\x1b[6~"),
        ("<f1><f4><f5><f12>", b"\x1bOP\x1bOS\x1b[15~\x1b[24~"),
        ("<leftCtrlOn>c<leftCtrlOff>", b"\x03"),
        ("<rightCtrlOn>u<rightCtrlOff>x", b"\x15x"),
        ("<leftAltOn>x<leftAltOff>", b"\x1bx"),
        ("<leftShiftOn>ab<leftShiftOff>c", b"ABc"),
        ("<leftCtrl><leftAlt><menu>", b""),
        ("<aOn><aOff>", b"a"),
        ("é", "é".encode()),
        ("~.", b"~."),
    ],
)
def test_serial_bytes(text: str, data: bytes) -> None:
    assert bc.to_bytes(text) == data


def test_serial_actions_keep_waits_and_text() -> None:
    actions = bc.serial_actions(bc.parse("ab<wait2><enter><tab>"))
    assert actions == [
        bc.Send(b"a", "a"),
        bc.Send(b"b", "b"),
        Wait(2.0),
        bc.Send(b"\r", ""),
        bc.Send(b"\t", ""),
    ]


# --- fuzzing: nothing but PackwrapError, and typing is total --------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_PIECES = st.sampled_from(
    [
        "<",
        ">",
        "wait",
        "Wait",
        "on",
        "Off",
        "enter",
        "leftCtrl",
        "f1",
        "f13",
        "-",
        ".",
        "1",
        "0",
        "ms",
        "µs",
        "h",
        "{{",
        "}}",
        " .HTTPIP ",
        ".Name",
        "{{-",
        "-}}",
        "a",
        "~",
        "\r",
        "界",
    ]
)


@given(st.lists(_PIECES | st.text(max_size=4), max_size=20).map("".join))
def test_fuzz_parse_and_render_raise_only_packwrap_errors(text: str) -> None:
    try:
        rendered = bc.render(text, DATA)
        exprs = bc.parse(rendered)
    except PackwrapError as exc:
        assert str(exc)
        return
    for e in exprs:
        assert isinstance(e, Wait | Key)
        if isinstance(e, Wait):
            assert e.seconds > 0
    bc.serial_actions(exprs)  # every parsed key has bytes


@given(st.text(max_size=30))
def test_fuzz_plain_text_round_trips(text: str) -> None:
    # text without "<" is typed exactly as written
    text = text.replace("<", "")
    assert bc.parse(text) == lit(text)


# --- the boot options ----------------------------------------------------------------

from packwrap.build import common_options as co  # noqa: E402
from packwrap.config.schema import Schema, SourceBody  # noqa: E402


def prepare(values: dict, lines: dict | None = None):
    schema = Schema(co.BOOT_OPTIONS + co.HTTP_OPTIONS, co.BOOT_CHECKS + co.HTTP_CHECKS)
    return schema.prepare(SourceBody(values, "t.pkr.hcl", 3, lines or {}))


def test_invalid_boot_command_is_a_config_error_with_its_line() -> None:
    _, problems, _ = prepare(
        {"boot_command": ["A<enter>", "<wait-5s>", "{{ .HTTPAddr }}"]}, {"boot_command": 12}
    )
    assert [str(p) for p in problems] == [
        "t.pkr.hcl:12: boot_command[1]: '<wait-5s>': expecting a positive wait value",
        "t.pkr.hcl:12: boot_command[2]: unknown template field .HTTPAddr (known: .HTTPIP, "
        ".HTTPPort, .Name, .VMName, .SSHPublicKey)",
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"boot_command": ["a"], "boot_expect": ["x", "y"]}, "boot_expect has 2 entries"),
        ({"boot_command": ["a"], "boot_secret_elements": [1]}, "no boot_command element 1"),
        ({"boot_command": ["a"], "boot_secret_elements": "0"}, "list of boot_command indexes"),
        ({"boot_expect_timeout": "0s"}, "boot_expect_timeout must be positive"),
        ({"boot_key_interval": "-1s"}, "boot_key_interval must not be negative"),
        ({"http_directory": "h", "http_content": {"/a": "b"}}, "either http_directory"),
        ({"http_content": {"a": "b"}}, "must start with '/'"),
        ({"http_port_min": 9000, "http_port_max": 8000}, "less than or equal"),
    ],
)
def test_boot_and_http_checks(values: dict, message: str) -> None:
    _, problems, _ = prepare(values)
    assert any(message in p.message for p in problems), problems


def test_boot_wait_rules() -> None:
    def wait(**kw) -> float:
        config, problems, _ = prepare(kw)
        assert problems == []
        return co.boot_wait_seconds(config)

    assert wait() == 10.0  # Packer's default
    assert wait(boot_wait="0s") == 10.0  # Packer: 0 means the default
    assert wait(boot_wait="-1s") == 0.0  # Packer: negative means none
    assert wait(boot_wait="3s") == 3.0
    # packwrap: waiting for the console first needs no fixed sleep
    assert wait(boot_command=["A"], boot_expect=["(S)hell?"]) == 0.0
    assert wait(boot_command=["A"], boot_expect=["(S)hell?"], boot_wait="2s") == 2.0


def test_key_interval_rules() -> None:
    config, _, _ = prepare({})
    assert co.key_interval_seconds(config, {}) == 0.0  # serial: no needless pacing
    assert co.key_interval_seconds(config, {"PACKER_KEY_INTERVAL": "10ms"}) == 0.01
    config, _, _ = prepare({"boot_key_interval": "5ms"})
    assert co.key_interval_seconds(config, {"PACKER_KEY_INTERVAL": "10ms"}) == 0.005
