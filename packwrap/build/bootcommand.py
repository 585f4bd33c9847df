"""Packer's boot_command grammar, and what its keys mean on a serial console.

Grammar (packer-plugin-sdk bootcommand/boot_command.pigeon): a
sequence of, tried in this order at each position,
  Wait        `<wait>` (1 s), `<waitN>` (N seconds), `<wait` Go-duration `>`
  CharToggle  `<` one char `on|off` `>`   (`<fOn>` holds the key "f")
  Special     `<` special key [`on|off`] `>`   (case-insensitive)
  Literal     any single character (so `<foo>` types `<`, `f`, `o`, `o`, `>`)
The `wait` keyword is case-sensitive; a non-positive wait is invalid.

Before parsing, a boot_command string is rendered as a Go template with the fields
{{ .HTTPIP }}, {{ .HTTPPort }}, {{ .Name }} (and {{ .VMName }}, {{ .SSHPublicKey }}
when a builder provides them). Only field references are supported; anything else
in `{{ }}` is an error.

On a serial line keys become bytes (`serial_actions`): there is no key-down /
key-up, so modifiers only change the characters that follow (Ctrl+letter gives
the control character, Alt prefixes ESC like xterm's meta, Shift upper-cases).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from packwrap.durations import MAX_SECONDS, parse_duration
from packwrap.errors import PackwrapError

PRESS, ON, OFF = "press", "on", "off"


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Key:
    """A key event: `char` is either a literal character or a special key name (lower-case)."""

    name: str
    special: bool = False
    action: str = PRESS


Expr = Wait | Key

# Longest names first so `leftAlt` wins over `left` and `f10` over `f1`.
SPECIAL_KEYS = sorted(
    [
        "bs",
        "del",
        "enter",
        "esc",
        *(f"f{i}" for i in range(1, 13)),
        "return",
        "tab",
        "up",
        "down",
        "spacebar",
        "insert",
        "home",
        "end",
        "pageup",
        "pagedown",
        "leftalt",
        "leftctrl",
        "leftshift",
        "rightalt",
        "rightctrl",
        "rightshift",
        "leftsuper",
        "rightsuper",
        "leftcommand",
        "rightcommand",
        "leftoption",
        "rightoption",
        "left",
        "right",
        "menu",
    ],
    key=len,
    reverse=True,
)
_SPECIAL_RE = re.compile(r"<(" + "|".join(SPECIAL_KEYS) + r")(on|off)?>", re.IGNORECASE)
# Go's time.ParseDuration units, as the pigeon grammar lists them.
_UNIT = r"(?:ns|us|µs|μs|ms|s|m|h)"
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"
_WAIT_RE = re.compile(r"<wait(?:((?:" + _NUMBER + _UNIT + r")+)|(0|[1-9][0-9]*))?>")
_TOGGLE_RE = re.compile(r"<(.)(on|off)>", re.IGNORECASE | re.DOTALL)
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def parse(text: str) -> list[Expr]:
    """Parse an already-rendered boot command; raise PackwrapError for a non-positive wait."""
    bad = _SURROGATE_RE.search(text)
    if bad:
        # A lone surrogate (JSON's "\ud800") is no character: it has no bytes to type.
        raise PackwrapError(
            f"boot_command: invalid character U+{ord(bad.group()):04X} at offset {bad.start()}"
        )
    out: list[Expr] = []
    pos = 0
    while pos < len(text):
        if text[pos] == "<":
            m = _WAIT_RE.match(text, pos)
            if m:
                if m.group(1):
                    # the grammar matched; the value is Go's time.ParseDuration's
                    seconds = parse_duration(m.group(1), what="boot_command wait")
                elif m.group(2):
                    seconds = float(m.group(2))
                else:
                    seconds = 1.0
                if seconds <= 0:
                    raise PackwrapError(
                        f"boot_command: {m.group(0)!r}: expecting a positive wait value"
                    )
                if seconds > MAX_SECONDS:  # Go's int64 nanoseconds
                    raise PackwrapError(f"boot_command: {_short(m.group(0))!r}: wait too long")
                out.append(Wait(seconds))
                pos = m.end()
                continue
            m = _TOGGLE_RE.match(text, pos)
            if m:
                out.append(Key(m.group(1), False, m.group(2).lower()))
                pos = m.end()
                continue
            m = _SPECIAL_RE.match(text, pos)
            if m:
                action = (m.group(2) or PRESS).lower()
                out.append(Key(m.group(1).lower(), True, action))
                pos = m.end()
                continue
        out.append(Key(text[pos]))
        pos += 1
    return out


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


# --- Go-template rendering (fields only) ---------------------------------------------

_ACTION_RE = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.DOTALL)
_FIELD_RE = re.compile(r"\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*")

#: Fields a boot command may use; builders fill them (placeholders at config time).
TEMPLATE_FIELDS = ("HTTPIP", "HTTPPort", "Name", "VMName", "SSHPublicKey")


def render(text: str, data: Mapping[str, object], *, what: str = "boot_command") -> str:
    """Render `{{ .Field }}` references (with Go's `{{-`/`-}}` trimming); unknown -> error."""
    out: list[str] = []
    pos = 0
    for m in _ACTION_RE.finditer(text):
        before = text[pos : m.start()]
        if m.group(1):
            before = before.rstrip()
        out.append(before)
        field = _FIELD_RE.fullmatch(m.group(2))
        if not field:
            raise PackwrapError(
                f"{what}: unsupported template action {m.group(0)!r}: only fields such as "
                "{{ .HTTPIP }}, {{ .HTTPPort }}, {{ .Name }} are available here"
            )
        name = field.group(1)
        if name not in data:
            known = ", ".join("." + k for k in data)
            raise PackwrapError(f"{what}: unknown template field .{name} (known: {known})")
        value = data[name]
        out.append("" if value is None else str(value))
        pos = m.end()
        if m.group(3):
            rest = text[pos:]
            pos += len(rest) - len(rest.lstrip())
    tail = text[pos:]
    if "{{" in tail:
        raise PackwrapError(f"{what}: unclosed template action in {text!r}")
    out.append(tail)
    return "".join(out)


PLACEHOLDER_DATA = {
    "HTTPIP": "10.0.2.2",
    "HTTPPort": "8000",
    "Name": "vm",
    "VMName": "vm",
    "SSHPublicKey": "ssh-ed25519 AAAA",
}


def validate(commands: Iterable[str]) -> list[str]:
    """Problems in a boot_command list (rendered with placeholder data, then parsed)."""
    problems = []
    for i, element in enumerate(commands):
        try:
            parse(render(element, PLACEHOLDER_DATA, what=f"boot_command[{i}]"))
        except PackwrapError as exc:
            msg = exc.message.removeprefix("boot_command: ")
            if not msg.startswith("boot_command["):
                msg = f"boot_command[{i}]: {msg}"
            problems.append(msg)
    return problems


# --- serial bytes --------------------------------------------------------------------

CR = b"\r"
# VT220 keyboard: the Backspace key (<X]) sends DEL, and DEL is also the default erase
# character of both OpenBSD's and Linux's tty (ttydefaults.h CERASE = 0177), so <bs>
# erases the previous character; <del> is the VT220 "Remove" key (forward delete).
# The Go vmm plugin sent ^H for bs, which a default OpenBSD tty does not treat as erase.
SERIAL_KEYS: dict[str, bytes] = {
    "enter": CR,
    "return": CR,
    "bs": b"\x7f",
    "del": b"\x1b[3~",
    "esc": b"\x1b",
    "tab": b"\t",
    "spacebar": b" ",
    "up": b"\x1b[A",
    "down": b"\x1b[B",
    "right": b"\x1b[C",
    "left": b"\x1b[D",
    "home": b"\x1b[1~",
    "insert": b"\x1b[2~",
    "end": b"\x1b[4~",
    "pageup": b"\x1b[5~",
    "pagedown": b"\x1b[6~",
    # F1-F4 are VT100 PF1-PF4 (SS3), F5-F12 the VT220/xterm CSI numbers.
    "f1": b"\x1bOP",
    "f2": b"\x1bOQ",
    "f3": b"\x1bOR",
    "f4": b"\x1bOS",
    "f5": b"\x1b[15~",
    "f6": b"\x1b[17~",
    "f7": b"\x1b[18~",
    "f8": b"\x1b[19~",
    "f9": b"\x1b[20~",
    "f10": b"\x1b[21~",
    "f11": b"\x1b[23~",
    "f12": b"\x1b[24~",
    "menu": b"",
}
_MODIFIERS = {
    "leftctrl": "ctrl",
    "rightctrl": "ctrl",
    "leftalt": "alt",
    "rightalt": "alt",
    "leftoption": "alt",
    "rightoption": "alt",
    "leftshift": "shift",
    "rightshift": "shift",
    "leftsuper": "super",
    "rightsuper": "super",
    "leftcommand": "super",
    "rightcommand": "super",
}


@dataclass(frozen=True)
class Send:
    """Bytes for one key; `text` is the printable character it stands for ('' if none)."""

    data: bytes
    text: str = ""


def _char_bytes(ch: str, held: set[str]) -> bytes:
    if "shift" in held and ch.isalpha():
        ch = ch.upper()
    if "ctrl" in held and (ch.isalpha() or ch in "@[\\]^_ ?"):
        code = 0x7F if ch == "?" else (0 if ch == " " else ord(ch.upper()) & 0x1F)
        data = bytes([code])
    else:
        data = ch.encode("utf-8")
    return b"\x1b" + data if "alt" in held else data


def serial_actions(exprs: Iterable[Expr]) -> list[Send | Wait]:
    """Keys -> bytes for a serial console; waits pass through."""
    held: set[str] = set()
    out: list[Send | Wait] = []
    for e in exprs:
        if isinstance(e, Wait):
            out.append(e)
            continue
        if e.special and e.name in _MODIFIERS:
            mod = _MODIFIERS[e.name]
            if e.action == ON:
                held.add(mod)
            elif e.action == OFF:
                held.discard(mod)
            continue  # a lone modifier press sends nothing on a serial line
        if e.action == OFF:
            continue  # key-up: nothing on a serial line
        if e.special:
            data = SERIAL_KEYS[e.name]
            if "alt" in held and data:
                data = b"\x1b" + data
            text = " " if e.name == "spacebar" and not held else ""
            out.append(Send(data, text))
        else:
            data = _char_bytes(e.name, held)
            plain = data == e.name.encode("utf-8") and e.name.isprintable()
            out.append(Send(data, e.name if plain else ""))
    return out


def to_bytes(text: str) -> bytes:
    """The bytes a rendered boot command types (waits dropped): handy for tests and logs."""
    return b"".join(a.data for a in serial_actions(parse(text)) if isinstance(a, Send))
