"""install.sub's response-file format and matching rule (install.sub's _autorespond)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_BLANKS = " \t"


@dataclass(frozen=True)
class Entry:
    """One `question = answer` line that _autorespond would read."""

    line: int  # 1-based line number in the file
    key: str  # as written (trailing blanks stripped)
    value: str  # leading blanks stripped; may contain '='


def parse(text: str) -> list[Entry]:
    """The lines _autorespond considers, in file order.

    Skipped: empty lines, lines starting with '#' or '=', lines with nothing after the
    first '='. The line itself is stripped of blanks first (read with IFS=' \\t').
    """
    entries = []
    # ksh `read` splits at newlines only; a CR (CRLF file) stays part of the answer.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip(_BLANKS)
        if not line or line[0] in "#=" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.lstrip(_BLANKS)
        if not value:
            continue
        entries.append(Entry(number, key.rstrip(_BLANKS), value))
    return entries


def key_matches(question: str, key: str) -> bool:
    """`q == @(|*[[:blank:]])"$key"@([[:blank:]?]*|)`, both lower-cased, key literal."""
    q, k = question.lower(), key.lower()
    if not k:
        return False
    start = 0
    while (i := q.find(k, start)) >= 0:
        j = i + len(k)
        if (i == 0 or q[i - 1] in _BLANKS) and (j == len(q) or q[j] in _BLANKS + "?"):
            return True
        start = i + 1
    return False


def canonical_key(question: str) -> str:
    """The key install.sub writes to install.resp: the question up to its first '?'."""
    return question.split("?", 1)[0].rstrip(_BLANKS)


_GO_TEMPLATE = re.compile(r"\{\{.*?\}\}")
_TEMPLATE_SAMPLES = {
    "httpip": "10.0.2.100",
    "httpport": "8080",
    "name": "build",
    "vmname": "vm",
}


def has_template(value: str) -> bool:
    return _GO_TEMPLATE.search(value) is not None


def expand_templates(value: str) -> str:
    """Go-template placeholders of a .pkr.in file replaced by sample values for checks."""

    def sample(m: re.Match[str]) -> str:
        name = re.sub(r"[^a-z]", "", m.group(0).lower())
        return _TEMPLATE_SAMPLES.get(name, "x")

    return _GO_TEMPLATE.sub(sample, value)
