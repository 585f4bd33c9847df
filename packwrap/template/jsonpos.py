"""A JSON reader that remembers the line of every object and key.

json.loads gives no positions; template errors must name file:line, so objects
come back as PosDict (with .line and .key_lines) and arrays as PosList (.line).
"""

from __future__ import annotations

import json.decoder
import math
import re
from typing import Any

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_WS = re.compile(r"[ \t\r\n]*")


class PosDict(dict):
    line: int = 0
    key_lines: dict[str, int]


class PosList(list):
    line: int = 0


class JsonError(Exception):
    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.message = message
        self.line = line


def loads(text: str) -> Any:
    parser = _Parser(text)
    value = parser.value()
    parser.ws()
    if parser.pos != len(text):
        raise JsonError("extra data after the JSON value", parser.line())
    return value


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def line(self, pos: int | None = None) -> int:
        return self.text.count("\n", 0, self.pos if pos is None else pos) + 1

    def ws(self) -> None:
        # [ \t\r\n]* matches (maybe empty) at every position: never None
        self.pos = _WS.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def fail(self, what: str) -> JsonError:
        found = self.text[self.pos : self.pos + 12] or "end of file"
        return JsonError(f"JSON syntax error: expected {what}, found {found!r}", self.line())

    def string(self) -> str:
        try:
            # json's own string scanner (C-accelerated); typeshed does not declare it
            s, self.pos = json.decoder.scanstring(self.text, self.pos + 1)  # type: ignore[attr-defined]
        except json.JSONDecodeError as exc:
            raise JsonError(f"JSON syntax error: {exc.msg}", self.line(exc.pos)) from None
        return s

    def value(self) -> Any:
        self.ws()
        t, p = self.text, self.pos
        c = t[p : p + 1]
        if c == "{":
            obj = PosDict()
            obj.line = self.line()
            obj.key_lines = {}
            self.pos += 1
            self.ws()
            if t.startswith("}", self.pos):
                self.pos += 1
                return obj
            while True:
                self.ws()
                if not t.startswith('"', self.pos):
                    raise self.fail("a quoted key")
                kline = self.line()
                key = self.string()
                self.ws()
                if not t.startswith(":", self.pos):
                    raise self.fail("':'")
                self.pos += 1
                if key in obj:
                    raise JsonError(f"key {key!r} appears twice in this object", kline)
                obj[key] = self.value()
                obj.key_lines[key] = kline
                self.ws()
                if t.startswith(",", self.pos):
                    self.pos += 1
                elif t.startswith("}", self.pos):
                    self.pos += 1
                    return obj
                else:
                    raise self.fail("',' or '}'")
        if c == "[":
            arr = PosList()
            arr.line = self.line()
            self.pos += 1
            self.ws()
            if t.startswith("]", self.pos):
                self.pos += 1
                return arr
            while True:
                arr.append(self.value())
                self.ws()
                if t.startswith(",", self.pos):
                    self.pos += 1
                elif t.startswith("]", self.pos):
                    self.pos += 1
                    return arr
                else:
                    raise self.fail("',' or ']'")
        if c == '"':
            return self.string()
        for word, val in (("true", True), ("false", False), ("null", None)):
            if t.startswith(word, p):
                self.pos += len(word)
                return val
        m = _NUMBER.match(t, p)
        if m and m.end() > p:
            self.pos = m.end()
            num = m.group(0)
            try:
                value = float(num) if any(ch in num for ch in ".eE") else int(num)
            except ValueError:  # more digits than int() converts
                value = math.inf
            if value in (math.inf, -math.inf):
                shown = num if len(num) <= 20 else num[:17] + "..."
                raise JsonError(f"JSON number out of range: {shown}", self.line())
            return value
        raise self.fail("a JSON value")
