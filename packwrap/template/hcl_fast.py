"""The quick way to read a well-formed .pkr.hcl / .pkrvars.hcl: no lark.

python-hcl2's lark parser costs more than the rest of a template load together (its
import and tables ~0.35 s, ~0.3 s to parse a blueprint's 500 lines; bench/README.md).
The structure of a well-formed file is simple: attributes `name = expression`, one a
line, and blocks `type "label" ... {` closed by a `}` on a line of its own. This reader
walks that structure with expr.Parser, which finds where each expression ends, and
builds the same syntax.Body as hcl_reader's python-hcl2 path: the same attributes,
blocks, lines and expression text (tests/unit/test_hcl_fast.py compares both).

It gives up (None) on anything it is not sure of: one-line blocks, a syntax error, an
attribute set twice, CR characters. python-hcl2 then reads the file, so every error
message stays as it was.
"""

from __future__ import annotations

import bisect
import re

from packwrap.template.expr import ExprSyntaxError, Node, Parser, parse_expression
from packwrap.template.syntax import Attr, Block, Body

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_PLAIN_LABEL = re.compile(r'"([^"\\$%\n]*)"')


class _Unsure(Exception):
    """The file is not in the simple shape this reader takes."""


#: What may continue an expression: python-hcl2 takes some of these at the start of
#: the next line and not others, so this reader takes none there.
_CONTINUATION = frozenset(".[(?:|&=!<>+-*/%")


def _crosses_line(gap: str) -> bool:
    return "\n" in re.sub(r"/\*.*?\*/", "", gap, flags=re.S)


class _Extent(Parser):
    """expr.Parser that remembers where the last token ended before trailing blanks and
    comments, and whether a heredoc was that token."""

    gap = (-1, -1)  # the last run of blanks and comments skipped: (start, end)
    heredoc_end = -1

    def skip_ws(self) -> None:
        before = self.pos
        super().skip_ws()
        if self.pos != before:
            self.gap = (before, self.pos)
            if self.text[self.pos : self.pos + 1] in _CONTINUATION and _crosses_line(
                self.text[before : self.pos]
            ):
                raise _Unsure

    def token_end(self) -> int:
        """Where the expression's last token ends."""
        return self.gap[0] if self.gap[1] == self.pos else self.pos

    def heredoc(self) -> Node:
        node = super().heredoc()
        self.heredoc_end = self.pos
        return node


def read_body(text: str, file: str) -> Body | None:
    """The file's Body, or None when python-hcl2 must read it."""
    if "\r" in text:
        return None
    try:
        return _Reader(text, file).body(1, top=True)
    except (_Unsure, ExprSyntaxError, RecursionError, ValueError, IndexError):
        return None  # python-hcl2 reads it, and words the error if there is one


class _Reader:
    def __init__(self, text: str, file: str):
        self.text = text
        self.file = file
        self.pos = 0
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line_of(self, pos: int) -> int:
        return bisect.bisect_right(self.line_starts, pos)

    def skip_gap(self) -> bool:
        """Skip blanks, newlines and comments; True when a line ended in between."""
        p = Parser(self.text)
        p.pos = self.pos
        p.skip_ws()
        gap = self.text[self.pos : p.pos]
        self.pos = p.pos
        return _crosses_line(gap)

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def body(self, line: int, *, top: bool) -> Body:
        body = Body(file=self.file, line=line)
        while True:
            self.skip_gap()
            if self.at_end():
                if top:
                    return body
                raise _Unsure
            if self.text[self.pos] == "}":
                if top:
                    raise _Unsure
                self.pos += 1
                self.end_of_line()
                return body
            self.item(body)

    def end_of_line(self) -> None:
        """Nothing but blanks and a comment may follow on this line."""
        if not self.skip_gap() and not self.at_end():
            raise _Unsure

    def item(self, body: Body) -> None:
        start = self.pos
        name = self.ident()
        line = self.line_of(start)
        self.blanks()
        if self.text.startswith("=", self.pos) and not self.text.startswith("==", self.pos):
            self.pos += 1
            self.blanks()
            if name in body.attrs:
                raise _Unsure  # python-hcl2's path words the error
            body.attrs[name] = self.attribute(name, line)
            return
        labels = []
        while not self.text.startswith("{", self.pos):
            plain = _PLAIN_LABEL.match(self.text, self.pos)
            if plain:
                labels.append(plain[1])
                self.pos = plain.end()
            else:
                labels.append(self.ident())
            self.blanks()
        self.pos += 1
        self.blanks()
        if self.text.startswith("}", self.pos):  # `type "label" {}`
            self.pos += 1
            self.end_of_line()
            body.blocks.append(Block(name, labels, Body(self.file, line), self.file, line))
            return
        self.end_of_line()
        inner = self.body(line, top=False)
        body.blocks.append(Block(name, labels, inner, self.file, line))

    def attribute(self, name: str, line: int) -> Attr:
        start = self.pos
        rest = self.text[start : start + 2]
        if not rest or rest[0] in "\n#" or rest in ("//", "/*"):
            raise _Unsure  # nothing after `=` on its line
        p = _Extent(self.text)
        p.pos = start
        p.expression()
        end = p.token_end()
        if p.heredoc_end == end and self.text.startswith("\n", end):
            end += 1  # python-hcl2's heredoc token takes its closing line's newline
            self.pos = end
            self.skip_gap()
        else:
            self.pos = end
            self.end_of_line()
        node = parse_expression(self.text[start:end])
        return Attr(name, node, self.file, line, self.line_of(start))

    def ident(self) -> str:
        found = _IDENT.match(self.text, self.pos)
        if not found:
            raise _Unsure
        self.pos = found.end()
        return found[0]

    def blanks(self) -> None:
        while self.text.startswith((" ", "\t"), self.pos):
            self.pos += 1
