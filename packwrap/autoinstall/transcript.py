"""The questions an installer really asked, read from its console transcript.

Under autoinstall, install.sub's `_ask` prints the question, its default in `[...]` and
then the answer `_autorespond` found (or the default) on the same line:

    Location of sets? (cd0 disk http nfs or 'done') [http] cd0

A question is recognised in two ways: a release's own prompt texts (placeholders such as
`{if}` match anything), or, for a question no data knows, the shape install.sub gives
every question (a capitalised sentence with a `?`, an optional `(...)` hint, an optional
`[default]`). The last line of a transcript that is still being written may be a question
without an answer yet (`complete` is False).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from packwrap.autoinstall.release import Prompt, Release
from packwrap.errors import PackwrapError

_ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[@-Z\\-_])")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# After the question: ask_which's "(or 'done')", a "[default]", then the answer.
_TAIL = re.compile(r"^(?: \(or 'done'\))?(?: \[(?P<default>[^\]]*)\])?(?: (?P<answer>.*))?$")
# The shape of any install.sub question: a sentence with '?', an optional (hint) that may
# hold one level of parentheses, then the tail above.
_SHAPE = re.compile(
    r"^(?P<question>[A-Z][^?\[\]]{2,160}\?(?: \((?:[^()]|\([^()]*\))*\))?)"
    r"(?: \[(?P<default>[^\]]*)\])?(?: (?P<answer>.*))?$"
)
# Lines printed before a question that are not questions although shaped like one.
_NOT_QUESTIONS = re.compile(r"^(?:boot>|>> |WARNING|\[)")


@dataclass(frozen=True)
class Asked:
    """One question as the transcript shows it."""

    line: int  # 1-based line in the transcript
    question: str  # as printed (placeholders filled), without default and answer
    default: str | None  # the [...] shown, None if none was
    answer: str  # what followed on the line ("" if nothing yet)
    complete: bool  # the line ended (False: the last line, still being asked)
    prompt: Prompt | None  # the release prompt it is, None if no data knows it


def clean_lines(text: str) -> list[str]:
    """Console text as a terminal shows it: ANSI removed, CR-overwrites applied."""
    out = []
    for raw in _ANSI.sub("", text).split("\n"):
        line = raw.rstrip("\r").split("\r")[-1]  # a CR returns to the line start
        out.append("".join(ch for ch in line if ch == "\t" or ord(ch) >= 0x20).rstrip("\t"))
    return out


@cache
def _text_pattern(text: str) -> re.Pattern[str]:
    parts = _PLACEHOLDER.split(text)
    rx = "".join(re.escape(p) if i % 2 == 0 else ".+?" for i, p in enumerate(parts))
    return re.compile("^" + rx)


def match_prompt(line: str, prompts: Iterable[Prompt]) -> tuple[Prompt, str] | None:
    """The prompt whose text starts `line` (the longest such text), and the rest."""
    best: tuple[Prompt, str] | None = None
    best_len = -1
    for prompt in prompts:
        for text in prompt.texts:
            m = _text_pattern(text).match(line)
            if m and m.end() > best_len and _TAIL.match(line[m.end() :]):
                best, best_len = (prompt, line[m.end() :]), m.end()
    return best


def parse_transcript(text: str, release: Release) -> list[Asked]:
    """Every question in `text`, in order; `release` tells known questions from others."""
    lines = clean_lines(text)
    ends_open = not text.endswith("\n")
    asked: list[Asked] = []
    for number, line in enumerate(lines, start=1):
        stripped = line.rstrip(" ")
        if not stripped or _NOT_QUESTIONS.match(stripped):
            continue
        last = number == len(lines)
        complete = not (last and ends_open)
        hit = match_prompt(line, release.prompts)
        if hit is not None:
            prompt, rest = hit
            tail = _TAIL.match(rest)
            assert tail is not None  # match_prompt checked it
            question = line[: len(line) - len(rest)]
            default, answer = tail.group("default"), tail.group("answer") or ""
        else:
            m = _SHAPE.match(line)
            if m is None:
                continue
            prompt, question = None, m.group("question")
            default, answer = m.group("default"), m.group("answer") or ""
        asked.append(Asked(number, question, default, answer.strip(), complete, prompt))
    return asked


def installer_questions(text: str, release: Release) -> list[Asked]:
    """The questions of an install, from its transcript; PackwrapError if it has none."""
    asked = [a for a in parse_transcript(text, release) if a.prompt is None or a.prompt.answerable]
    if not asked:
        raise PackwrapError(
            "the transcript holds no installer questions (is it the console log of an "
            "OpenBSD install?)"
        )
    return asked
