"""The HCL expression parser/evaluator and its functions."""

from __future__ import annotations

from pathlib import Path

import pytest

from packwrap.template.evaluate import EvalError, Scope, evaluate
from packwrap.template.expr import ExprSyntaxError, parse_expression
from packwrap.template.functions import FUNCTIONS

VARS = {"a": "x", "n": 3, "l": ["p", "q"], "m": {"k": 1}, "t": True}


def ev(text: str, tmp: Path | None = None, **roots):
    base = tmp or Path.cwd()
    scope = Scope({"var": VARS, **roots}, FUNCTIONS, base, base, {"HOME": "/home/u"})
    return evaluate(parse_expression(text), scope)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"${var.a}-y"', "x-y"),
        ('"${var.n}"', 3),  # a lone interpolation keeps its type
        ('"n=${var.n} t=${var.t}"', "n=3 t=true"),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("5 / 2", 2.5),
        ("-7 % 3", -1),
        ("var.n > 2 && !false", True),
        ('var.n == "3"', False),
        ('var.a == "x" ? "yes" : "no"', "yes"),
        ("var.l[1]", "q"),
        ('var.m["k"]', 1),
        ("var.m.k", 1),
        ('{ a = 1, "b/c" = [1, 2]\n d = var.l[0] }', {"a": 1, "b/c": [1, 2], "d": "p"}),
        ('[for s in var.l : upper(s) if s != "p"]', ["Q"]),
        ("{for k, v in var.m : k => v + 1}", {"k": 2}),
        ('"%{ if var.t }on%{ else }off%{ endif }"', "on"),
        ('"%{ for x in var.l }${x},%{ endfor }"', "p,q,"),
        ('"a\\"b\\n$${x} %%{y}"', 'a"b\n${x} %{y}'),
        ('"{{ .HTTPIP }}:{{ .HTTPPort }}"', "{{ .HTTPIP }}:{{ .HTTPPort }}"),
        ("<<EOT\nhello ${var.a}\nEOT\n", "hello x\n"),
        ("<<-EOT\n    a\n      b\n    EOT", "a\n  b\n"),
        ('"x ${~ var.a ~} y"', "xxy"),
        ("<<EOT\n%{ for s in var.l ~}\n  ${s}\n%{ endfor ~}\nend\nEOT", "p\nq\nend\n"),
        ("<<EOT\n%{ if var.t ~}\n  yes\n%{~ else ~}\n  no\n%{~ endif }|\nEOT", "yes|\n"),
        ("# comment\n1 // more\n", 1),
        ('try(var.nope, "fallback")', "fallback"),
        ("can(var.nope)", False),
    ],
)
def test_expressions(text, expected):
    assert ev(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('upper("ab")', "AB"),
        ('lower("AB")', "ab"),
        ('format("%s-%03d-%v", "a", 7, true)', "a-007-true"),
        ('join(",", ["a", "b"])', "a,b"),
        ('split(",", "a,b")', ["a", "b"]),
        ('replace("a-b-c", "-", "_")', "a_b_c"),
        # Packer binds cty stdlib replace: plain text, no /regex/ form (packer 1.6.6 agrees)
        ('replace("a1b22", "/[0-9]+/", "#")', "a1b22"),
        ('regex_replace("a1b22", "[0-9]+", "#")', "a#b#"),
        ("concat([1], [2, 3])", [1, 2, 3]),
        ('lookup({a = 1}, "b", 2)', 2),
        ('length("abc") + length([1]) + length({a = 1})', 5),
        ('coalesce("", null, "z")', "z"),
        ('trimspace("  x \\n")', "x"),
        ('basename("/a/b.iso")', "b.iso"),
        ('dirname("/a/b.iso")', "/a"),
        ('formatdate("YYYY-MM-DD hh:mm:ss", "2024-01-02T03:04:05Z")', "2024-01-02 03:04:05"),
        ("min(3, 1, 2) + max(1, 9)", 10),
        ("tostring(5)", "5"),
        ('tonumber("12")', 12),
        ('regex_replace("abc123", "([a-z]+)([0-9]+)", "$2-$1")', "123-abc"),
        ('env("HOME")', "/home/u"),
        ('regex("[0-9]+", "ab12c")', "12"),
        ('regex("(\\\\w)-(\\\\d)", "x-1")', ["x", "1"]),
        ('can(regex("^[0-9]+[MG]$", "4G"))', True),
        ('can(regex("^[0-9]+[MG]$", "4T"))', False),
        ('regexall("[a-z]", "a1b")', ["a", "b"]),
        ("length(uuidv4())", 36),
        ("merge({a = 1}, {b = 2})", {"a": 1, "b": 2}),
        ('substr("hello", 1, 3)', "ell"),
        ("flatten([[1], [2, [3]]])", [1, 2, 3]),
    ],
)
def test_functions(text, expected):
    assert ev(text) == expected


def test_timestamp_is_rfc3339_and_stable_within_a_scope():
    base = Path.cwd()
    scope = Scope({}, FUNCTIONS, base, base)
    first = evaluate(parse_expression("timestamp()"), scope)
    assert first.endswith("Z") and "T" in first
    assert evaluate(parse_expression("timestamp()"), scope) == first


def test_file_functions(tmp_path):
    (tmp_path / "data.txt").write_text("hello\n")
    (tmp_path / "t.tpl").write_text("host=${host}\n%{ for s in sets }${s} %{ endfor }\n")
    assert ev('file("data.txt")', tmp_path) == "hello\n"
    assert ev('fileexists("data.txt")', tmp_path) is True
    assert ev('fileexists("nope")', tmp_path) is False
    assert ev('templatefile("t.tpl", {host = "h", sets = ["a", "b"]})', tmp_path) == (
        "host=h\na b \n"
    )
    assert ev('abspath("x")', tmp_path) == str(tmp_path / "x")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("var.nope", "variable var.nope is not declared"),
        ("var.aa", "did you mean 'a'"),
        ("nosuch.x", "unknown name 'nosuch'"),
        ("nosuchfn(1)", "function nosuchfn() is not supported"),
        ('upper("a", "b")', "wrong number of arguments"),
        ('1 + "x"', "'x' is not a number"),
        ("var.l[5]", "out of range"),
        ('"x${var.l}"', "cannot be used as a string"),
        ('file("/nonexistent/file")', "cannot read"),
        ("1 / 0", "division by zero"),
    ],
)
def test_evaluation_errors(text, message):
    with pytest.raises(EvalError) as info:
        ev(text)
    assert message in info.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"abc', "unterminated string"),
        ("1 +", "expected an expression"),
        ("var.l[*]", "splat expressions"),
        ("(1", "expected ')'"),
        ('"%{ bogus }"', "unknown template directive"),
        ("<<EOT\nno end\n", "never closed"),
    ],
)
def test_syntax_errors(text, message):
    with pytest.raises(ExprSyntaxError) as info:
        parse_expression(text)
    assert message in info.value.message
