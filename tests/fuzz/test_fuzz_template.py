"""Template loader (HCL, HCL2-JSON, legacy JSON), -var strings and expressions: only our error.

Every case goes through the public `load_template`, so an internal error type that the
loader forgets to turn into a PackwrapError is a finding too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from packwrap.errors import PackwrapError
from packwrap.template import load_template
from tests.fuzz._support import assert_ours, count


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-template")


def _load(path: Path, text: str, **kw) -> None:
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        t = load_template(path, env={"HOME": "/nonexistent"}, **kw)
    except PackwrapError as exc:
        assert_ours(exc)
        return
    for b in t.builds:  # the model is usable: names and bodies are there
        assert isinstance(b.name, str) and b.source.body is not None


# --- HCL-ish text ------------------------------------------------------------------------

_HCL_PIECES = [
    'source "qemu" "x" {', 'source "qemu" {', "}", "{", "build {", 'build "b" {',
    'sources = ["source.qemu.x"]', 'sources = ["source.nope.y"]', 'provisioner "shell" {',
    'post-processor "manifest" {', "post-processors {", 'only = ["qemu.x"]',
    'variable "a" {', 'variable "b" {', "default = 1", 'default = "s"', "default = null",
    "type = list(string)", "type = map(any)", "type = object({k = number})", "type = bogus",
    "sensitive = true", "locals {", 'local "l" {', "expression = var.a", "b = local.b",
    "c = local.c + 1", "x = var.a", "x = var.nope", "packer {", "required_version = \">= 1\"",
    'data "d" "e" {', "variables {", "a = ", '"${', '"%{ if true }', "%{ endif }\"",
    '"${var.a}"', "${", "}", "[", "]", "(", ")", "1", "1e400", "-0", "true", "null",
    '"\\u0041"', '"\\ud800"', "#c", "// c", "/* c", "*/", "<<EOT\n", "<<-EOT\n", "EOT\n",
    "=", ",", ".", "..", "...", "?", ":", "=>", "for k, v in var.b :", "[for x in [1,2]: x]",
    "upper(", "format(\"%d\", 1e400)", "file(\"/dev/zero\")", "templatefile(", "env(\"X\")",
    "regex(\"(\", \"a\")", "try(", "can(", "abspath(\"\\u0000\")", "timestamp()",
    "split(\"\", \"ab\")", "range(1e9)", "range(0, 1, 0)", "lookup({}, \"a\")", "element([], 0)",
    "substr(\"abc\", -1, 99)", "join(\",\", [1])", "tonumber(\"x\")", "\n", "  ", "\t", "\x00",
    "\ufeff", "é",
]  # fmt: skip
HCL_TEXT = st.lists(st.one_of(st.sampled_from(_HCL_PIECES), st.text(max_size=4)), max_size=30).map(
    " ".join
)


@given(HCL_TEXT)
@example('variable "a" {\n default = "\\ud800"\n}\n')
def test_hcl_text(workdir: Path, text: str) -> None:
    count("template.hcl_text")
    _load(workdir / "t.pkr.hcl", text)


# --- expressions inside a valid template ---------------------------------------------------

_TEMPLATE_WITH_EXPR = """
variable "s" {{
  type    = string
  default = "a"
}}
variable "n" {{
  type    = number
  default = 3
}}
variable "l" {{
  type    = list(string)
  default = ["x", "y"]
}}
variable "m" {{
  type    = map(number)
  default = {{ a = 1 }}
}}
variable "pw" {{
  type      = string
  default   = "hunter2"
  sensitive = true
}}
locals {{
  e = {expr}
}}
source "qemu" "x" {{
  vm_name  = "${{local.e}}"
  boot_command = ["{template}"]
}}
build {{ sources = ["source.qemu.x"] }}
"""
_EXPR_PIECES = [
    "var.s", "var.n", "var.l", "var.m", "var.pw", "var.nope", "local.e", "local.f", "path.root",
    "1", "0", "-1", "1e400", "0.5", '"s"', '"${var.s}"', "true", "null", "[", "]", "{", "}",
    "(", ")", ",", ":", "?", "+", "-", "*", "/", "%", "==", "!=", "<", ">=", "&&", "||", "!",
    "[*]", ".0", "[0]", "[99]", '["a"]', "for x in var.l :", "x", "=>", "...", "if",
    "upper(", "lower(", "format(", '"%d"', '"%s"', '"%5.2f"', '"%v"', '"%"', "formatlist(",
    "join(", "split(", "length(", "max(", "min(", "abs(", "ceil(", "floor(", "pow(", "log(",
    "signum(", "parseint(", '"ff"', "16", "99", "coalesce(", "concat(", "contains(",
    "distinct(", "flatten(", "keys(", "values(", "merge(", "slice(", "sort(", "zipmap(",
    "range(", "element(", "index(", "lookup(", "tostring(", "tonumber(", "tobool(",
    "tolist(", "toset(", "tomap(", "try(", "can(", "regex(", "regexall(", '"(?P<x>a)"',
    '"["', "replace(", "trimprefix(", "substr(", "chomp(", "indent(", "base64encode(",
    "base64decode(", '"!!"', "sha256(", "md5(", "uuidv4()", "timestamp()", "formatdate(",
    "timeadd(", '"1h"', '"x"', "bcrypt(", "file(", "fileexists(", '"/etc"', "abspath(",
    "dirname(", "basename(", "pathexpand(", '"~"', "env(", "templatefile(", "jsonencode(",
    "jsondecode(", "yamlencode(", "csvdecode(", "cidrsubnet(", '"10.0.0.0/8"', "cidrhost(",
]  # fmt: skip
EXPR = st.lists(st.sampled_from(_EXPR_PIECES), min_size=1, max_size=12).map(" ".join)
_TMPL_PIECES = ["${", "}", "%{", "if", "for", "endif", "endfor", "else", "~", "var.s", "x", "$${"]
TEMPLATE_STR = st.lists(
    st.one_of(st.sampled_from(_TMPL_PIECES), st.sampled_from(_EXPR_PIECES)), max_size=10
).map(" ".join)


def _hcl_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@given(EXPR, TEMPLATE_STR)
@example('format("%d", var.n * 1e400)', "x")
@example("pow(10, 400)", "x")
@example("1 + ²", "x")
@example("1.²", "x")
@example("floor(1e400)", "x")
@example('parseint("ff", 99)', "x")
@example('formatdate("x", timestamp())', "x")
@example("range(1e400)", "x")
@example('tonumber("nan")', "x")
@example('regex("(?P<x>a)(?P<x>b)", "ab")', "x")
def test_expressions(workdir: Path, expr: str, template: str) -> None:
    count("template.expressions")
    _load(
        workdir / "e.pkr.hcl",
        _TEMPLATE_WITH_EXPR.format(expr=expr, template=_hcl_string(template)),
    )


# --- -var strings against typed variables -------------------------------------------------

_VAR_NAMES = ["s", "n", "l", "m", "pw", "nope", "", "n.x", "-n"]
_VAR_VALUES = [
    "", "x", "1", "1e400", "-1e400", "nan", "inf", "NaN", "0x10", "9" * 5000, "²", "1.²", "٣",
    "[", "[1",
    '["a"]', '["\\ud800"]', "{a=1}", "{a=", "{a=\"x\"}", "null", "true", "${var.s}",
    "\"quoted\"", "<<EOT\nx\nEOT", "\x00", "\n", "[for x in [1]: x]", "upper(\"a\")",
]  # fmt: skip
VAR_ARG = st.one_of(
    st.builds(
        lambda n, v: f"{n}={v}",
        st.sampled_from(_VAR_NAMES),
        st.one_of(st.sampled_from(_VAR_VALUES), st.text(max_size=12)),
    ),
    st.text(max_size=15),
)


@given(st.lists(VAR_ARG, max_size=4), st.sampled_from(["var.n + 1", "var.l[0]", "var.m", "var.s"]))
@example(["n=1e400"], 'format("%d", var.n)')
@example(["n=nan"], "floor(var.n)")
@example(["n=inf"], "ceil(var.n)")
@example(['l=["\\ud800"]'], "var.l[0]")
@example(["l=²"], "var.n + 1")  # "²".isdigit() but int("²") fails: ValueError in the parser
def test_var_args(workdir: Path, var_args: list[str], expr: str) -> None:
    count("template.var_args")
    path = workdir / "v.pkr.hcl"
    path.write_text(_TEMPLATE_WITH_EXPR.format(expr=expr, template="<wait>"))
    try:
        load_template(path, var_args=var_args, env={})
    except PackwrapError as exc:
        assert_ours(exc)


@given(HCL_TEXT)
def test_var_files(workdir: Path, text: str) -> None:
    count("template.var_file")
    path = workdir / "f.pkr.hcl"
    path.write_text(_TEMPLATE_WITH_EXPR.format(expr="var.s", template="<wait>"))
    vf = workdir / "x.pkrvars.hcl"
    vf.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_template(path, var_files=[vf], env={})
    except PackwrapError as exc:
        assert_ours(exc)


# --- JSON: arbitrary text, arbitrary documents, template-shaped documents -----------------

JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=10),
    st.sampled_from(["${var.a}", "${", "{{ user `a` }}", "{{", "%{ if }", "\ud800"]),
)
JSON_VALUE = st.recursive(
    JSON_SCALAR,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.one_of(
                st.text(max_size=6),
                st.sampled_from(
                    [
                        "variable",
                        "variables",
                        "source",
                        "build",
                        "locals",
                        "builders",
                        "type",
                        "default",
                        "sources",
                        "provisioners",
                        "post-processors",
                        "name",
                        "qemu",
                        "override",
                        "only",
                        "except",
                        "sensitive-variables",
                        "boot_command",
                    ]
                ),
            ),  # fmt: skip
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)
_JSON_CHARS = st.sampled_from(list('{}[]":,0123456789.-+eE \n\ttrufalsn\\/u') + ['"a"', "null"])
JSON_TEXT = st.one_of(
    st.lists(_JSON_CHARS, max_size=40).map("".join),
    st.text(max_size=40),
)


@given(st.one_of(JSON_VALUE.map(json.dumps), JSON_TEXT))
@example('{"variable": {"a": {"default": "\\ud800"}}}')
@example("1" * 5000)
@example("[" * 5000)
@example('{"a": 1e400}')
def test_hcl_json_documents(workdir: Path, text: str) -> None:
    count("template.pkr_json")
    _load(workdir / "t.pkr.json", text)


@st.composite
def _legacy_doc(draw: st.DrawFn) -> str:
    doc = {
        "variables": draw(st.dictionaries(st.text(max_size=5), JSON_SCALAR, max_size=3)),
        "builders": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"type": st.sampled_from(["qemu", "openbsd-vmm", "", "x y"])},
                    optional={
                        "name": JSON_SCALAR,
                        "vm_name": JSON_SCALAR,
                        "boot_command": st.lists(JSON_SCALAR, max_size=3),
                        "ssh_password": JSON_SCALAR,
                    },
                ),
                max_size=3,
            )
        ),
    }
    extra = draw(st.dictionaries(st.sampled_from(["provisioners", "post-processors",
                                                   "sensitive-variables", "min_packer_version",
                                                   "description", "bogus"]), JSON_VALUE,
                                 max_size=3))  # fmt: skip
    doc.update(extra)
    return json.dumps(doc)


@given(st.one_of(_legacy_doc(), JSON_VALUE.map(json.dumps), JSON_TEXT))
@example('{"builders": [{"type": "qemu", "name": null}]}')  # a build named None
@example('{"builders": [{"type": "qemu", "name": []}]}')  # unhashable name: TypeError
@example('{"builders": [{"type": "qemu"}], "provisioners": true}')  # TypeError
@example('{"builders": [{"type": "qemu"}], "post-processors": true}')
@example('{"builders": [{"type": "qemu"}], "sensitive-variables": [{}]}')
@example('{"builders": [{"type": "qemu"}], "provisioners": [{"type": ["shell"]}]}')
@example('{"builders": [{"type": "qemu", "vm_name": "{{ user `a` }}"}]}')
@example('{"variables": {"a": "{{ env `X` }}"}, "builders": [{"type": "qemu"}]}')
@example('{"builders": [{"type": "qemu", "vm_name": "{{ timestamp | bogus }}"}]}')
def test_legacy_json_documents(workdir: Path, text: str) -> None:
    count("template.legacy_json")
    _load(workdir / "t.json", text)


# --- Packer-style command-line flags --------------------------------------------------------

_FLAG_PIECES = [
    "-var", "--var", "-var=", "-var-file", "-var-file=", "-only", "-only=a,b", "-except=",
    "-on-error", "-on-error=abort", "-on-error=x", "-parallel-builds", "-parallel-builds=-1",
    "-parallel-builds=²", "-parallel-builds=" + "9" * 5000, "-force", "-force=maybe",
    "-debug=false", "-color=0", "-timestamp-ui", "-machine-readable", "--", "-", "t.pkr.hcl",
    "a=b", "=", "n=1", "-x", "--unknown", "-syntax-only",
]  # fmt: skip


@given(
    st.lists(st.one_of(st.sampled_from(_FLAG_PIECES), st.text(max_size=8)), max_size=8),
    st.sampled_from(["build", "validate", "regenerate"]),
)
@example(["-parallel-builds=²"], "build")
@example(["-parallel-builds=" + "9" * 5000], "build")
def test_packer_flags(argv: list[str], command: str) -> None:
    count("template.cli_flags")
    from packwrap.template.cliargs import parse_packer_flags

    try:
        parse_packer_flags(argv, command=command)
    except PackwrapError as exc:
        assert_ours(exc)


@given(st.one_of(JSON_VALUE.map(json.dumps), JSON_TEXT))
def test_json_var_files(workdir: Path, text: str) -> None:
    count("template.var_file_json")
    path = workdir / "j.pkr.hcl"
    path.write_text(_TEMPLATE_WITH_EXPR.format(expr="var.s", template="<wait>"))
    vf = workdir / "x.pkrvars.json"
    vf.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_template(path, var_files=[vf], env={})
    except PackwrapError as exc:
        assert_ours(exc)
