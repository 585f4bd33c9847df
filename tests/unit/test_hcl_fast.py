"""template/hcl_fast.py reads a file to the same Body as python-hcl2's path (the same
attributes, blocks, lines and expression text), or gives up; never a different Body."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from packwrap.errors import PackwrapError
from packwrap.template.expr import Parser
from packwrap.template.hcl_fast import read_body
from packwrap.template.hcl_reader import parse_with_python_hcl2
from packwrap.template.syntax import Body

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "corpus").rglob("*.hcl"))


def texts(body: Body) -> list[tuple[int, str]]:
    """Every attribute's line and expression text, in order, nested blocks included."""
    out = [(a.line, a.text) for a in body.attrs.values()]
    for block in body.blocks:
        out += texts(block.body)
    return out


def same_texts(fast: Body, slow: Body) -> None:
    """python-hcl2 leaves the line end, the next line's indent or a trailing comment in
    the text of an expression that ends in an operation. The text's readers (loader.py's
    one-line message, syntax.Attr.line_at) are not changed by what follows the last
    token, so the fast text must be python-hcl2's up to blanks and comments."""
    for (line, mine), (line2, theirs) in zip(texts(fast), texts(slow), strict=True):
        assert line == line2 and theirs.startswith(mine), (mine, theirs)
        rest = Parser(theirs[len(mine) :])
        rest.skip_ws()
        assert rest.pos == len(rest.text), (mine, theirs)


def same_as_python_hcl2(text: str) -> Body | None:
    fast = read_body(text, "t.pkr.hcl")
    if fast is not None:
        slow = parse_with_python_hcl2(text, "t.pkr.hcl")
        assert fast == slow
        same_texts(fast, slow)
    return fast


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.parent.name + "/" + p.name)
def test_the_corpus_reads_the_same_without_lark(path: Path) -> None:
    assert same_as_python_hcl2(path.read_text()) is not None


def test_a_blueprint_project_reads_the_same_without_lark(tmp_path: Path) -> None:
    from packwrap.cli import main

    assert main(["new", "openbsd-76", str(tmp_path / "p"), "--root-password", "x"]) == 0
    files = sorted((tmp_path / "p").glob("*.hcl"))
    assert len(files) >= 2
    for path in files:
        assert same_as_python_hcl2(path.read_text()) is not None, path.name


READ = [
    'a = 1\nb = "two" # note\n// c\nc = [1,\n  2, # x\n  3]\n',
    'source "qemu" "x" {\n  a = { k = "v",\n    n = 2 }\n'
    '  provisioner "shell" {\n    inline = ["a"]\n  }\n}\n',
    "build {}\nlocals {\n}\n",
    "a = <<EOF\nline ${var.x}\nEOF\nb = <<-EOT\n    indented\n    EOT\n",
    "a = trimspace(<<EOF\nx\nEOF\n)\nb = 2\n",
    'a = var.x ? 1 : 2\nb = !c && d || e\nc = [for s in var.l : upper(s) if s != ""]\n',
    "/* lead */ a = 1\nb = 2 /* tail */\n",
    'x = "$${not} %%{this}"\n',
    'variable "v" {\n  type = list(object({ a = string }))\n  default = []\n}\n',
    "a = 1",
    "",
    "\n\n# only a comment\n",
    'block "" id {\n}\n',
]


@pytest.mark.parametrize("text", READ)
def test_well_formed_files_read_the_same(text: str) -> None:
    assert same_as_python_hcl2(text) is not None


GIVE_UP = [
    "a = 1 b = 2\n",  # two attributes on a line: python-hcl2 words the error
    "a = 1\na = 2\n",  # set twice
    "a {\n  b = 1 }\n",  # one-line close
    "a { b = 1 }\n",  # one-line block
    "a =\n  1\n",  # value on the next line
    "a = [1,\n",  # unterminated
    "}\n",
    "a = 1\r\nb = 2\r\n",  # CR: left to python-hcl2
    'a = "x\n',
    "a {\n",
    "= 1\n",
]


@pytest.mark.parametrize("text", GIVE_UP)
def test_anything_unusual_is_left_to_python_hcl2(text: str) -> None:
    assert read_body(text, "t.pkr.hcl") is None


FRAGMENTS = [
    "a = 1",
    'b = "x${var.y}"',
    "c = [1,",
    "  2]",
    "d = { k = 1 }",
    'source "qemu" "x" {',
    "build {",
    "locals {}",
    "}",
    "# comment",
    "/* c */",
    "",
    "e = f(1) + 2 # tail",
    "g = <<EOF",
    "EOF",
    "h = var.a ? 1 : 2",
    "  && true",
    "i = 1 j = 2",
    "k =",
    'l = "unterminated',
    "m = [for s in x : s]",
    "n = [",
    "  [1],",
    "  -1,",
    "]",
    "o = a.b",
    "  .c",
    "  (1)",
    'p = "s" /* c */',
    "q = { k = 1,",
    "  v = 2 }",
    'label "a" b {',
    "  r = 1 }",
    "s = 1 // c",
]


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12))
def test_fast_reads_only_what_python_hcl2_reads_and_the_same(lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    fast = read_body(text, "t.pkr.hcl")
    try:
        slow = parse_with_python_hcl2(text, "t.pkr.hcl")
    except PackwrapError:
        assert fast is None
        return
    if fast is not None:
        assert fast == slow
        same_texts(fast, slow)
