"""HCL expression syntax: a small scannerless recursive-descent parser.

python-hcl2 gives us the file's structure (blocks, attributes, their lines) and
we parse each attribute's expression text here, so evaluation is ours and every
error names file:line and the expression. Supported: literals, quoted and
heredoc templates (`${...}`, `%{if}`, `%{for}`, strip markers), tuples, objects,
variables and attribute/index access, function calls (with `...` expansion),
unary/binary operators, conditionals and `for` expressions. Not supported:
splat expressions (`[*]`, `.*`) -- they raise a clear ExprSyntaxError.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


class ExprSyntaxError(Exception):
    """A syntax error at character offset `pos` of the parsed text."""

    def __init__(self, message: str, pos: int):
        super().__init__(message)
        self.message = message
        self.pos = pos


# ASCII only: str.isdigit() is also true for "²" and "٣", which int() may refuse.
_DIGITS = frozenset("0123456789")


@dataclass
class Node:
    """One expression node. `kind` picks the evaluation rule; `pos` is a text offset."""

    kind: str
    pos: int
    args: tuple[Any, ...] = ()
    text: str = field(default="", compare=False)  # the source text, for messages


# Template parts are: str (literal), Node (interpolation), or tuples for directives:
#   ("if", cond Node, then_parts, else_parts)
#   ("for", key_name | None, value_name, collection Node, body_parts)

_BINARY_LEVELS: list[tuple[str, ...]] = [
    ("||",),
    ("&&",),
    ("==", "!="),
    ("<=", ">=", "<", ">"),
    ("+", "-"),
    ("*", "/", "%"),
]

_IDENT_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT_CHARS = _IDENT_START | set("0123456789-")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


class Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    # -- low level ---------------------------------------------------------
    def error(self, message: str, pos: int | None = None) -> ExprSyntaxError:
        return ExprSyntaxError(message, self.pos if pos is None else pos)

    def skip_ws(self) -> None:
        t = self.text
        while self.pos < len(t):
            c = t[self.pos]
            if c in " \t\r\n":
                self.pos += 1
            elif c == "#" or t.startswith("//", self.pos):
                end = t.find("\n", self.pos)
                self.pos = len(t) if end < 0 else end + 1
            elif t.startswith("/*", self.pos):
                end = t.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated /* comment")
                self.pos = end + 2
            else:
                break

    def peek(self, s: str) -> bool:
        self.skip_ws()
        return self.text.startswith(s, self.pos)

    def accept(self, s: str) -> bool:
        if self.peek(s):
            # `=` must not swallow `==`/`=>`, `<` must not swallow `<<` heredocs etc.
            self.pos += len(s)
            return True
        return False

    def expect(self, s: str, what: str = "") -> None:
        if not self.accept(s):
            found = self.text[self.pos : self.pos + 10] or "end of expression"
            raise self.error(f"expected {s!r}{what}, found {found!r}")

    def ident(self) -> str | None:
        self.skip_ws()
        t, p = self.text, self.pos
        if p < len(t) and t[p] in _IDENT_START:
            end = p + 1
            while end < len(t) and t[end] in _IDENT_CHARS:
                end += 1
            self.pos = end
            return t[p:end]
        return None

    def peek_ident(self) -> str | None:
        save = self.pos
        name = self.ident()
        self.pos = save
        return name

    # -- expressions -------------------------------------------------------
    def parse_all(self) -> Node:
        node = self.expression()
        self.skip_ws()
        if self.pos != len(self.text):
            raise self.error(f"unexpected {self.text[self.pos : self.pos + 10]!r}")
        return node

    def expression(self) -> Node:
        start = self.pos
        cond = self.binary(0)
        if self.accept("?"):
            then = self.expression()
            self.expect(":", " in conditional")
            other = self.expression()
            cond = Node("cond", start, (cond, then, other))
        return cond

    def binary(self, level: int) -> Node:
        if level == len(_BINARY_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while True:
            self.skip_ws()
            op = next((o for o in _BINARY_LEVELS[level] if self._at_op(o)), None)
            if op is None:
                return left
            pos = self.pos
            self.pos += len(op)
            right = self.binary(level + 1)
            left = Node("binop", pos, (op, left, right))

    def _at_op(self, op: str) -> bool:
        t, p = self.text, self.pos
        if not t.startswith(op, p):
            return False
        nxt = t[p + len(op) : p + len(op) + 1]
        if op in ("<", ">") and nxt == "=":
            return False
        if op == "<" and nxt == "<":  # a heredoc is not a comparison
            return False
        return not (op in ("*", "/") and t[p : p + 2] in ("/*", "//"))

    def unary(self) -> Node:
        self.skip_ws()
        pos = self.pos
        if self.text.startswith("!", pos) and not self.text.startswith("!=", pos):
            self.pos += 1
            return Node("not", pos, (self.unary(),))
        if self.text.startswith("-", pos):
            self.pos += 1
            return Node("neg", pos, (self.unary(),))
        return self.postfix()

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            self.skip_ws()
            pos = self.pos
            t = self.text
            if t.startswith(".*", pos) or t.startswith("[*]", pos):
                raise self.error("splat expressions ([*], .*) are not supported")
            if t.startswith(".", pos):
                self.pos += 1
                self.skip_ws()
                name = self.ident()
                if name is None:
                    digits = self._digits()
                    if not digits:
                        raise self.error("expected an attribute name after '.'")
                    node = Node("index", pos, (node, Node("lit", pos, (int(digits),))))
                else:
                    node = Node("getattr", pos, (node, name))
            elif t.startswith("[", pos):
                self.pos += 1
                key = self.expression()
                self.expect("]")
                node = Node("index", pos, (node, key))
            else:
                return node

    def _digits(self) -> str:
        t, p = self.text, self.pos
        end = p
        while end < len(t) and t[end] in _DIGITS:
            end += 1
        self.pos = end
        return t[p:end]

    def number(self) -> Node:
        pos = self.pos
        t = self.text
        whole = self._digits()
        if len(whole) > 300:  # beyond a float's range (and int()'s digit limit)
            raise self.error("number out of range", pos)
        value: int | float = int(whole)
        if t.startswith(".", self.pos) and t[self.pos + 1 : self.pos + 2] in _DIGITS:
            self.pos += 1
            frac = self._digits()
            value = float(f"{whole}.{frac}")
        if t[self.pos : self.pos + 1] in ("e", "E"):
            save = self.pos
            self.pos += 1
            if t[self.pos : self.pos + 1] in ("+", "-"):
                self.pos += 1
            exp = self._digits()
            if not exp:
                self.pos = save
            else:
                value = float(t[pos : self.pos])
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error("number out of range", pos)
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)
        return Node("lit", pos, (value,))

    def primary(self) -> Node:
        self.skip_ws()
        t, pos = self.text, self.pos
        if pos >= len(t):
            raise self.error("expected an expression, found end of expression")
        c = t[pos]
        if c in _DIGITS:
            return self.number()
        if c == '"':
            self.pos += 1
            parts = self.template(quoted=True)
            return Node("template", pos, (parts,))
        if t.startswith("<<", pos):
            return self.heredoc()
        if c == "(":
            self.pos += 1
            inner = self.expression()
            self.expect(")")
            return Node("paren", pos, (inner,))
        if c == "[":
            self.pos += 1
            if self.peek_ident() == "for" and self._is_for():
                return self.for_expr(pos, "]")
            items = []
            while not self.accept("]"):
                items.append(self.expression())
                if not self.accept(","):
                    self.expect("]", " to close the list")
                    break
            return Node("tuple", pos, (items,))
        if c == "{":
            self.pos += 1
            if self.peek_ident() == "for" and self._is_for():
                return self.for_expr(pos, "}")
            return self.object(pos)
        name = self.ident()
        if name is None:
            raise self.error(f"unexpected {t[pos : pos + 10]!r}")
        if name == "true":
            return Node("lit", pos, (True,))
        if name == "false":
            return Node("lit", pos, (False,))
        if name == "null":
            return Node("lit", pos, (None,))
        self.skip_ws()
        if t.startswith("(", self.pos):
            self.pos += 1
            args: list[Node] = []
            expand = False
            while not self.accept(")"):
                args.append(self.expression())
                if self.accept("..."):
                    expand = True
                if not self.accept(","):
                    self.expect(")", f" to close the call of {name}()")
                    break
            return Node("call", pos, (name, args, expand))
        return Node("var", pos, (name,))

    def _is_for(self) -> bool:
        # `for` is a keyword only when followed by an identifier (`for x in ...`).
        save = self.pos
        self.ident()
        nxt = self.ident()
        self.pos = save
        return nxt is not None

    def for_expr(self, pos: int, close: str) -> Node:
        self.ident()  # "for"
        first = self.ident()
        second = None
        if self.accept(","):
            second = self.ident()
        if first is None or (second is None and self.text[self.pos - 1] == ","):
            raise self.error("expected variable names after 'for'")
        if self.ident() != "in":
            raise self.error("expected 'in' in for expression")
        collection = self.expression()
        self.expect(":", " in for expression")
        key_expr = None
        value_expr = self.expression()
        if close == "}":
            self.expect("=>", " in object for expression")
            key_expr, value_expr = value_expr, self.expression()
            self.accept("...")
        cond = None
        if self.peek_ident() == "if":
            self.ident()
            cond = self.expression()
        self.expect(close)
        key_name, value_name = (first, second) if second else (None, first)
        return Node(
            "for", pos, (close, key_name, value_name, collection, key_expr, value_expr, cond)
        )

    def object(self, pos: int) -> Node:
        items: list[tuple[Node, Node]] = []
        while not self.accept("}"):
            self.skip_ws()
            kpos = self.pos
            name = self.ident()
            self.skip_ws()
            if name is not None and self.text[self.pos : self.pos + 1] in ("=", ":"):
                key = Node("lit", kpos, (name,))
            else:
                self.pos = kpos
                key = self.expression()
            if not (self.accept("=") or self.accept(":")):
                raise self.error("expected '=' or ':' after the object key")
            items.append((key, self.expression()))
            self.accept(",")
        return Node("object", pos, (items,))

    def heredoc(self) -> Node:
        t, pos = self.text, self.pos
        self.pos += 2
        indent = self.accept("-")
        marker = self.ident()
        if marker is None:
            raise self.error("expected a heredoc marker after <<")
        nl = t.find("\n", self.pos)
        if nl < 0:
            raise self.error("heredoc marker must end its line")
        body_start = nl + 1
        # The closing marker is a line holding only the marker (leading spaces allowed).
        p = body_start
        lines = []
        while True:
            end = t.find("\n", p)
            line = t[p:] if end < 0 else t[p:end]
            if line.strip() == marker:
                self.pos = p + len(line)
                break
            lines.append(line)
            if end < 0:
                raise self.error(f"heredoc <<{marker} is never closed", pos)
            p = end + 1
        if indent:
            widths = [len(s) - len(s.lstrip(" \t")) for s in lines if s.strip()]
            cut = min(widths, default=0)
            lines = [s[cut:] for s in lines]
        body = "".join(s + "\n" for s in lines)
        sub = Parser(body)
        parts = sub.template(quoted=False, escapes=False)
        return Node("template", pos, (_shift_parts(parts, body_start),))

    # -- templates ---------------------------------------------------------
    def template(
        self,
        *,
        quoted: bool,
        escapes: bool = True,
        until: tuple[str, ...] = (),
        strip_first: bool = False,
    ) -> list:
        """Template parts up to the closing quote (or end of text, or a directive)."""
        parts: list[Any] = []
        buf: list[str] = []
        t = self.text
        strip_next = strip_first  # a `~}` just before: trim the leading whitespace

        def flush() -> None:
            nonlocal strip_next
            if buf:
                s = "".join(buf)
                if strip_next:
                    s = s.lstrip()
                    strip_next = False
                if s:
                    parts.append(s)
                buf.clear()

        while True:
            if self.pos >= len(t):
                if quoted:
                    raise self.error("unterminated string")
                flush()
                if until:
                    raise self.error(f"expected %{{ {until[0]} }}")
                return parts
            c = t[self.pos]
            if quoted and c == '"':
                self.pos += 1
                flush()
                if until:
                    raise self.error(f"expected %{{ {until[0]} }} before the end of the string")
                return parts
            if quoted and c == "\n":
                raise self.error("unterminated string (newline in a quoted string)")
            if escapes and c == "\\":
                self.pos += 1
                e = t[self.pos : self.pos + 1]
                if e in _ESCAPES:
                    buf.append(_ESCAPES[e])
                    self.pos += 1
                elif e in ("u", "U"):
                    width = 4 if e == "u" else 8
                    hexdigits = t[self.pos + 1 : self.pos + 1 + width]
                    try:
                        buf.append(chr(int(hexdigits, 16)))
                    except ValueError:
                        raise self.error(f"invalid escape \\{e}{hexdigits}") from None
                    self.pos += 1 + width
                else:
                    raise self.error(f"invalid escape sequence \\{e}")
                continue
            if t.startswith("$${", self.pos) or t.startswith("%%{", self.pos):
                buf.append(t[self.pos + 1 : self.pos + 3])
                self.pos += 3
                continue
            if t.startswith("${", self.pos):
                self.pos += 2
                if t.startswith("~", self.pos):
                    self.pos += 1
                    if buf:
                        buf[:] = ["".join(buf).rstrip()]
                flush()
                expr = self.expression()
                self.skip_ws()
                if t.startswith("~", self.pos):
                    self.pos += 1
                    strip_next = True
                self.expect("}", " to close ${")
                parts.append(expr)
                continue
            if t.startswith("%{", self.pos):
                dpos = self.pos
                self.pos += 2
                if t.startswith("~", self.pos):
                    self.pos += 1
                    if buf:
                        buf[:] = ["".join(buf).rstrip()]
                flush()
                word = self.ident()
                if word in until:
                    self.pos = dpos
                    return parts
                if word == "if":
                    cond = self.expression()
                    strip = self._close_directive()
                    then = self.template(
                        quoted=quoted, escapes=escapes, until=("else", "endif"), strip_first=strip
                    )
                    other: list = []
                    if self._directive_word() == "else":
                        strip = self._close_directive()
                        other = self.template(
                            quoted=quoted, escapes=escapes, until=("endif",), strip_first=strip
                        )
                        self._directive_word()
                    strip_next = self._close_directive()
                    parts.append(("if", cond, then, other))
                elif word == "for":
                    first = self.ident()
                    second = self.ident() if self.accept(",") else None
                    if self.ident() != "in" or first is None:
                        raise self.error("expected %{ for NAME in EXPR }")
                    coll = self.expression()
                    strip = self._close_directive()
                    body = self.template(
                        quoted=quoted, escapes=escapes, until=("endfor",), strip_first=strip
                    )
                    self._directive_word()
                    strip_next = self._close_directive()
                    key, val = (first, second) if second else (None, first)
                    parts.append(("for", key, val, coll, body))
                else:
                    raise self.error(f"unknown template directive %{{ {word} }}", dpos)
                continue
            buf.append(c)
            self.pos += 1

    def _directive_word(self) -> str | None:
        """The word of the `%{` a nested template stopped at (else, endif, endfor)."""
        self.pos += 2
        self.accept("~")
        return self.ident()

    def _close_directive(self) -> bool:
        strip = self.accept("~")
        self.expect("}", " to close %{")
        return strip


def _shift_parts(parts: list, offset: int) -> list:
    """Heredoc bodies are parsed separately; move their node offsets back into place."""

    def shift(node: Any) -> Any:
        if isinstance(node, Node):
            node.pos += offset
            for a in node.args:
                shift(a)
        elif isinstance(node, list | tuple):
            for a in node:
                shift(a)
        return node

    for p in parts:
        shift(p)
    return parts


def parse_expression(text: str) -> Node:
    """Parse one HCL expression (raises ExprSyntaxError)."""
    node = Parser(text).parse_all()
    node.text = text
    return node


def parse_template(text: str) -> Node:
    """Parse a bare template (a templatefile() file, or a JSON-syntax string).

    Backslashes are literal here: JSON has already decoded its escapes, and
    template files are read like heredocs.
    """
    p = Parser(text)
    parts = p.template(quoted=False, escapes=False)
    return Node("template", 0, (parts,), text)
