"""Read a .pkr.hcl / .pkrvars.hcl file into a syntax.Body.

python-hcl2 (lark) parses the structure and gives positions; each attribute's
expression text is then parsed by our own expr.Parser, which we evaluate. A well-formed
file is read without lark by template/hcl_fast.py, to the same Body.
"""

from __future__ import annotations

import re
from typing import Any

from packwrap.errors import PackwrapError
from packwrap.template.expr import ExprSyntaxError, parse_expression
from packwrap.template.syntax import Attr, Block, Body

# HCL's escapes for a literal `${` / `%{`. python-hcl2 8.x lexes `$${` only when a `}`
# follows somewhere (even past the string's end), so `"x$${y"` breaks the tree.
_ESCAPED_MARK = re.compile(r"\$\${|%%{")


def parse_tree(text: str) -> Any:
    """python-hcl2's lark tree of `text`, positions as in `text`; only the structure is
    used (expression text is sliced from `text` and read by expr.Parser), so the escapes
    are blanked to same-length plain characters first."""
    import hcl2  # lazy: lark and the grammar are slow to import

    return hcl2.parses_to_tree(_ESCAPED_MARK.sub(lambda m: m[0][:2] + " ", text))


def parse_hcl(text: str, file: str) -> Body:
    """The file's Body: read without lark when it is well-formed and simple
    (template/hcl_fast.py), else by python-hcl2, which words any syntax error."""
    from packwrap.template.hcl_fast import read_body

    return read_body(text, file) or parse_with_python_hcl2(text, file)


def parse_with_python_hcl2(text: str, file: str) -> Body:
    from lark import Token, Tree
    from lark.exceptions import UnexpectedInput

    try:
        tree = parse_tree(text)
    except UnexpectedInput as exc:
        line = _unterminated_string(text, exc.line)
        if line:
            raise PackwrapError(
                "HCL syntax error: unterminated string", file=file, line=line
            ) from None
        raise PackwrapError(
            f"HCL syntax error: {_describe(exc)}", file=file, line=exc.line
        ) from None
    except Exception as exc:  # the grammar's post-processing can raise anything
        raise PackwrapError(f"HCL syntax error: {exc}", file=file) from None

    def line_of(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    def label(node: Any) -> str:
        if isinstance(node, Token):
            return str(node)
        if node.data == "identifier":
            return str(node.children[0])
        src = text[node.meta.start_pos : node.meta.end_pos]
        try:
            value = parse_expression(src)
        except ExprSyntaxError as exc:
            raise PackwrapError(exc.message, file=file, line=node.meta.line) from None
        parts = value.args[0] if value.kind == "template" else None
        if not parts or len(parts) != 1 or not isinstance(parts[0], str):
            if parts == []:
                return ""
            raise PackwrapError(
                f"block label {src} must be a plain string", file=file, line=node.meta.line
            )
        return parts[0]

    def body_of(tree: Tree, start_line: int) -> Body:
        body = Body(file=file, line=start_line)
        for child in tree.children:
            if not isinstance(child, Tree):
                continue
            if child.data == "attribute":
                name = label(child.children[0])
                expr_tree = child.children[-1]
                start, end = expr_tree.meta.start_pos, expr_tree.meta.end_pos
                src = text[start:end]
                try:
                    node = parse_expression(src)
                except ExprSyntaxError as exc:
                    raise PackwrapError(
                        f"in {name} = {_short(src)}: {exc.message}",
                        file=file,
                        line=line_of(start + exc.pos),
                    ) from None
                line = child.meta.line
                if name in body.attrs:
                    first = body.attrs[name].line
                    raise PackwrapError(
                        f"attribute {name!r} is set twice (first at line {first})",
                        file=file,
                        line=line,
                    )
                body.attrs[name] = Attr(name, node, file, line, line_of(start))
            elif child.data == "block":
                parts = [c for c in child.children if isinstance(c, Tree)]
                block_type = label(parts[0])
                inner = next((c for c in parts[1:] if c.data == "body"), None)
                labels = [label(c) for c in parts[1:] if c.data != "body"]
                block_body = (
                    body_of(inner, child.meta.line)
                    if inner is not None
                    else Body(file, child.meta.line)
                )
                body.blocks.append(Block(block_type, labels, block_body, file, child.meta.line))
            elif child.data == "body":
                nested = body_of(child, start_line)
                body.attrs.update(nested.attrs)
                body.blocks.extend(nested.blocks)
        return body

    root = tree.children[0] if tree.children else None
    if root is None or not isinstance(root, Tree):
        return Body(file=file, line=1)
    return body_of(root, 1)


def _short(src: str) -> str:
    one = " ".join(src.split())
    return one if len(one) <= 60 else one[:57] + "..."


def _describe(exc: Exception) -> str:
    token = getattr(exc, "token", None)
    char = getattr(exc, "char", None)
    column = getattr(exc, "column", None)
    if token is not None:
        what = "end of file" if token.type == "$END" else repr(str(token).strip() or str(token))
    elif char is not None:
        what = repr(char)
    else:
        return str(exc).splitlines()[0] if str(exc) else "invalid syntax"
    return f"unexpected {what} at column {column}"


def _unterminated_string(text: str, error_line: int) -> int | None:
    """python-hcl2 lets a quoted string run across lines; HCL does not. Find the first
    line before the error with an unbalanced quote, outside heredocs and comments."""
    heredoc = None
    for number, line in enumerate(text.split("\n")[:error_line], 1):
        if heredoc:
            if line.strip() == heredoc:
                heredoc = None
            continue
        quotes, i = 0, 0
        while i < len(line):
            c = line[i]
            if c == "\\":
                i += 2
                continue
            if c == '"':
                quotes += 1
            elif quotes % 2 == 0 and (c == "#" or line.startswith("//", i)):
                break
            elif quotes % 2 == 0 and line.startswith("<<", i):
                marker = line[i + 2 :].lstrip("-").strip()
                heredoc = marker or None
                break
            i += 1
        if quotes % 2:
            return number
    return None
