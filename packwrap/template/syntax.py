"""A file's structure, whatever its syntax: blocks and attributes with their lines.

The HCL reader (python-hcl2's parse tree), the JSON reader and the legacy-JSON
reader all produce this, so evaluation and build assembly are written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from packwrap.template.expr import Node


@dataclass
class Attr:
    name: str
    expr: Node
    file: str
    line: int  # line of the attribute name
    expr_line: int = 0  # line where the expression text starts (0: same as line)

    @property
    def text(self) -> str:
        return self.expr.text

    def line_at(self, pos: int | None) -> int:
        """The file line of character `pos` of the expression text."""
        start = self.expr_line or self.line
        if pos is None:
            return start
        return start + self.expr.text.count("\n", 0, max(pos, 0))


@dataclass
class Block:
    type: str
    labels: list[str]
    body: Body
    file: str
    line: int


@dataclass
class Body:
    file: str
    line: int
    attrs: dict[str, Attr] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)

    def blocks_of(self, type_: str) -> list[Block]:
        return [b for b in self.blocks if b.type == type_]
