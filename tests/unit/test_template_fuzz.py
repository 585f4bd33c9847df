"""Whatever the input, the template model answers with its own errors, never a traceback."""

from __future__ import annotations

import contextlib
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from packwrap.errors import PackwrapError
from packwrap.template.evaluate import EvalError, Scope, evaluate
from packwrap.template.expr import ExprSyntaxError, parse_expression, parse_template
from packwrap.template.functions import FUNCTIONS

ALPHABET = st.sampled_from(
    list("abvarlocl.${}%[]()\"\\'=<>!?:,+-*/#~\n 019")
    + ["var.", "local.", "${", "%{", "<<EOT\n"]
    + ["for ", " in ", "if ", "endif", "endfor", "else", "upper(", "try(", "...", "=>"]
)
SOURCE = st.lists(ALPHABET, max_size=30).map("".join)


def scope() -> Scope:
    base = Path("/nonexistent-dir")
    return Scope({"var": {"a": "x", "l": [1, 2]}, "local": {}}, FUNCTIONS, base, base, {})


@given(SOURCE)
def test_expressions_fail_only_with_expression_errors(text):
    try:
        node = parse_expression(text)
    except ExprSyntaxError as exc:
        assert 0 <= exc.pos <= len(text)
        return
    with contextlib.suppress(EvalError):
        evaluate(node, scope())


@given(SOURCE)
def test_templates_fail_only_with_expression_errors(text):
    try:
        node = parse_template(text)
    except ExprSyntaxError:
        return
    with contextlib.suppress(EvalError):
        evaluate(node, scope())


@given(
    st.lists(
        st.sampled_from(
            [
                'source "qemu" "x" {',
                "}",
                "build {",
                'sources = ["source.qemu.x"]',
                "a = ",
                "var.a",
                '"${',
                "}",
                "\n",
                "  ",
                "[",
                "]",
                "1",
                'variable "a" {',
                "default = 1",
                "locals {",
                "b = local.b",
                "type = list(string)",
                '"s"',
                "#c",
                "<<EOT\n",
                "EOT\n",
                "=",
                ",",
            ]
        ),
        max_size=25,
    ).map(" ".join)
)
def test_hcl_files_fail_only_with_packwrap_errors(tmp_path_factory, text):
    from packwrap.template import load_template

    path = tmp_path_factory.mktemp("fuzz") / "t.pkr.hcl"
    path.write_text(text)
    try:
        load_template(path, env={})
    except PackwrapError as exc:
        assert "\n" not in str(exc)
