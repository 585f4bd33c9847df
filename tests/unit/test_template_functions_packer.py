"""Packer's HCL2 functions in packwrap: results, errors, the README count, and `console`.

Where packer (1.6.6 in CI) knows a function, one `packer console` run cross-checks
a sample of results against packwrap's.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from packwrap.commands.console import render, run_console
from packwrap.errors import PackwrapError
from packwrap.template import load_template
from packwrap.template.evaluate import EvalError, Scope, evaluate
from packwrap.template.expr import parse_expression
from packwrap.template.functions import FUNCTIONS
from packwrap.template.packer_functions import (
    NON_SERVICE_FUNCTIONS,
    PACKER_FUNCTIONS,
    SERVICE_FUNCTIONS,
)
from tests.packwrap_runner import run_cli

REPO = Path(__file__).resolve().parents[2]
SPECIAL_FORMS = {"try", "can", "convert"}  # evaluated by the evaluator itself


def _eval(text: str, base: Path = REPO) -> object:
    return evaluate(parse_expression(text), Scope({}, FUNCTIONS, base, base))


RESULTS = [
    ("alltrue([true, true])", True),
    ("alltrue([])", True),
    ("anytrue([false])", False),
    ('chunklist(["a", "b", "c"], 2)', [["a", "b"], ["c"]]),
    ('chunklist(["a", "b"], 0)', [["a", "b"]]),
    ('cidrhost("10.12.112.0/20", 16)', "10.12.112.16"),
    ('cidrhost("10.12.112.0/20", -2)', "10.12.127.254"),
    ('cidrnetmask("172.16.0.0/12")', "255.240.0.0"),
    ('cidrsubnet("172.16.0.0/12", 4, 2)', "172.18.0.0/16"),
    ('cidrsubnet("fd00:fd12:3456:7890::/56", 16, 162)', "fd00:fd12:3456:7800:a200::/72"),
    (
        'cidrsubnets("10.1.0.0/16", 4, 4, 8, 4)',
        ["10.1.0.0/20", "10.1.16.0/20", "10.1.32.0/24", "10.1.48.0/20"],
    ),
    ('coalescelist([], ["a"])', ["a"]),
    ('compact(["a", "", "b", null])', ["a", "b"]),
    ('convert(["a", 1], list(string))', ["a", "1"]),
    ('csvdecode("a,b\\n1,2\\n3,4")', [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]),
    ('endswith("hello", "lo")', True),
    ('formatlist("Hello, %s!", ["A", "B"])', ["Hello, A!", "Hello, B!"]),
    ('indent(2, "a\\nb")', "a\n  b"),
    ('index(["a", "b"], "b")', 1),
    ("log(16, 2)", 4),
    ('parseint("FF", 16)', 255),
    ('parseint("-10", 2)', -2),
    ("pow(3, 2)", 9),
    ("range(3)", [0, 1, 2]),
    ("range(10, 5, -2)", [10, 8, 6]),
    ("range(0, 1, 0.25)", [0, 0.25, 0.5, 0.75]),
    ("reverse([1, 2])", [2, 1]),
    ('setintersection(["a", "b"], ["b", "c"])', ["b"]),
    ('setproduct(["a", "b"], ["x"])', [["a", "x"], ["b", "x"]]),
    ('setunion(["b"], ["a"])', ["a", "b"]),
    ('sha1("hello")', "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"),
    ("signum(-3)", -1),
    ('slice(["a", "b", "c"], 1, 2)', ["b"]),
    ("sort([10, 9])", ["10", "9"]),
    ('startswith("hello", "he")', True),
    ('strcontains("abc", "b")', True),
    ('strrev("abc")', "cba"),
    ("sum([1, 2.5])", 3.5),
    ('textencodebase64("Hello World", "UTF-16LE")', "SABlAGwAbABvACAAVwBvAHIAbABkAA=="),
    ('textdecodebase64("SABlAGwAbABvACAAVwBvAHIAbABkAA==", "UTF-16LE")', "Hello World"),
    ('timeadd("2017-11-22T00:00:00Z", "10m")', "2017-11-22T00:10:00Z"),
    ('timeadd("2017-11-22T00:00:00Z", "-1h30m")', "2017-11-21T22:30:00Z"),
    ('urlencode("Hello World?")', "Hello+World%3F"),
    ('uuidv5("dns", "www.terraform.io")', "a5008fae-b28c-5ba5-96cd-82b4c53552d6"),
    ('yamldecode("a: [1, true]")', {"a": [1, True]}),
    ('yamlencode({a = "b", c = [1, true]})', '"a": "b"\n"c":\n- 1\n- true\n'),
    ('zipmap(["a", "b"], [1, 2])', {"a": 1, "b": 2}),
]


@pytest.mark.parametrize(("text", "expected"), RESULTS)
def test_packer_function_results(text, expected):
    assert _eval(text) == expected


def test_base64gzip_bcrypt_and_legacy_time():
    import base64
    import gzip

    import bcrypt

    assert gzip.decompress(base64.b64decode(_eval('base64gzip("hi")'))) == b"hi"
    hashed = _eval('bcrypt("secret", 4)')
    assert hashed.startswith("$2a$04$")  # Go's prefix
    assert bcrypt.checkpw(b"secret", hashed.encode())
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", _eval('legacy_isotime("2006-01-02")'))
    stamp = _eval('legacy_isotime("Monday January 2 3:04pm MST")')
    assert re.fullmatch(r"[A-Z][a-z]+day [A-Z][a-z]+ \d{1,2} \d{1,2}:\d{2}[ap]m UTC", stamp)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", _eval('legacy_isotime("")'))
    assert re.fullmatch(r"\d{4}", _eval('legacy_strftime("%Y")'))


def test_fileset_is_relative_and_sorted(tmp_path):
    (tmp_path / "files" / "sub").mkdir(parents=True)
    for name in ("b.txt", "a.txt", "c.sh", "sub/d.txt"):
        (tmp_path / "files" / name).write_text("x")
    assert _eval('fileset("files", "*.txt")', tmp_path) == ["a.txt", "b.txt"]
    assert _eval('fileset("files", "**/*.txt")', tmp_path) == ["a.txt", "b.txt", "sub/d.txt"]


def test_templatefile_cannot_call_itself(tmp_path):
    (tmp_path / "t.tpl").write_text('${templatefile("t.tpl", {})}')
    with pytest.raises(EvalError) as exc:
        _eval('templatefile("t.tpl", {})', tmp_path)
    assert "cannot recursively call templatefile from inside templatefile call" in exc.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("upper([1])", 'upper(): Invalid value for "str" parameter: string required.'),
        ("sha1({a = 1})", 'sha1(): Invalid value for "str" parameter: string required.'),
        ('sum("a")', 'sum(): Invalid value for "list" parameter: list required.'),
        ("sum([])", "sum(): cannot sum an empty list"),
        ('index(["a"], "c")', "index(): item not found"),
        ('zipmap(["a"], [])', "number of keys (1) does not match number of values (0)"),
        ("range(1, 2, 0)", "range(): step must not be zero"),
        ('cidrnetmask("fd00::/8")', "only IPv4 networks are supported"),
        ('cidrhost("10.0.0.0/30", 4)', "does not accommodate a host numbered 4"),
        ('parseint("12", 1)', "base must be a whole number between 2 and 62"),
        ('timeadd("2017-11-22", "1h")', 'not a valid RFC3339 timestamp: "2017-11-22"'),
        ('timeadd("2017-11-22T00:00:00Z", "1y")', 'time: invalid duration "1y"'),
        ('slice(["a"], 0, 2)', "end index must not be greater than the length of the list"),
        ('convert("a", list(string))', "expected list(string), got string"),
        ('element(["a"], -1)', "cannot use element function with a negative index"),
        ("concat()", "concat(): at least one argument is required"),
        ("max()", "max(): must pass at least one number"),
        ('parseint("0x10", 16)', 'cannot parse "0x10" as a base 16 integer.'),
        ("upper(null)", 'Invalid value for "str" parameter: argument must not be null.'),
        ('format("%d", 1.5)', "an integer is required"),
        ('formatdate("h A", "2018-01-02T03:04:05Z")', 'invalid date format verb "A"'),
        ('coalescelist(["a"], "b")', 'Invalid value for "vals" parameter: list required.'),
        ("sha1()", "sha1(): wrong number of arguments, expects 1"),
        ("bcrypt()", "bcrypt(): wrong number of arguments, expects 1 to 2"),
        ("setunion()", "setunion(): wrong number of arguments, expects at least 1"),
        ('lookup({a = 1}, "a")', 'expects 3 argument(s). Missing value for "default".'),
        ('csvdecode("a,b\\n1")', "record on line 2: wrong number of fields"),
        ('textencodebase64("a", "NO-SUCH")', "is not a supported IANA encoding name"),
    ],
)
def test_packer_function_errors(text, message):
    with pytest.raises(EvalError) as exc:
        _eval(text)
    assert message in exc.value.message


@pytest.mark.parametrize("name", sorted(SERVICE_FUNCTIONS))
def test_service_functions_say_to_hand_the_build_to_packer(name):
    with pytest.raises(EvalError) as exc:
        _eval(f'{name}("a", "b")')
    assert "remote service" in exc.value.message
    assert "hand this build to packer" in exc.value.message


def test_wrong_type_names_file_and_line(tmp_path):
    (tmp_path / "t.pkr.hcl").write_text('locals {\n  a = 1\n  b = sha1(["x"])\n}\n')
    with pytest.raises(PackwrapError) as exc:
        load_template(tmp_path / "t.pkr.hcl", require_builds=False)
    text = str(exc.value)
    assert "t.pkr.hcl:3" in text
    assert 'sha1(): Invalid value for "str" parameter: string required.' in text


def test_readme_function_count_is_measured():
    """README's "functions: N/M non-service functions"; fails when support drops."""
    readme = (REPO / "README.md").read_text()
    m = re.search(r"functions: (\d+)/(\d+) non-service functions", readme)
    assert m, "README.md must state 'functions: N/M non-service functions'"
    implemented = NON_SERVICE_FUNCTIONS & (set(FUNCTIONS) | SPECIAL_FORMS)
    assert int(m.group(2)) == len(NON_SERVICE_FUNCTIONS)
    assert len(implemented) >= int(m.group(1)), sorted(NON_SERVICE_FUNCTIONS - implemented)
    assert len(implemented) == int(m.group(1)), "support grew: update the README count"
    assert SERVICE_FUNCTIONS <= PACKER_FUNCTIONS


# Functions packer 1.6.6 has, with arguments whose results both must agree on.
PACKER_SAMPLE = [
    'sha1("hello")',
    'cidrsubnets("10.1.0.0/16", 4, 4, 8, 4)',
    'cidrhost("10.12.112.0/20", -2)',
    'cidrsubnet("172.16.0.0/12", 4, 2)',
    "range(0, 1, 0.25)",
    "sort([10, 9])",
    'formatlist("%s, %s", "x", ["a", "b"])',
    'urlencode("Hello World?")',
    'chunklist(["a", "b", "c"], 2)',
    'compact(["a", "", "b"])',
    'setunion(["b"], ["a"])',
    'parseint("-10", 2)',
    'csvdecode("a,b\\n1,2")',
    'timeadd("2017-11-22T00:00:00Z", "-1h30m")',
    'uuidv5("dns", "www.terraform.io")',
    'yamlencode({a = "b", c = [1, true]})',
    'yamldecode("a: [1, true]")',
    'indent(2, "a\\nb")',
    'zipmap(["a", "b"], [1, 2])',
    "pow(2, 10)",
    "log(16, 2)",
    'coalescelist([], ["a"])',
    'slice(["a", "b", "c"], 1, 2)',
    'strrev("abc")',
    'regex_replace("a1b2", "[0-9]", "-")',
    'format("%05.1f|%-3s|%q", 3.14159, "x", "y")',
    'format("%5s|%-5s|", "a", "b")',
    'split(",", "")',
    'split("", "abc")',
    'title("ÉCOLE élan hello-world")',
    'format("%.3s|%v", "abcdef", {a = 1})',
    'coalesce(1, "b")',
    'distinct([1, 1, "1", "a"])',
    'coalesce("", 2)',
    'lookup({a = 1}, "b", "d")',
    'basename("/a/b/")',
    "range(5, 1)",
    'jsonencode({a = "x<y&é"})',
    'replace("a1b2", "/[0-9]/", "-")',
    'yamlencode("multi\\nline")',
    'yamldecode("a: 2020-01-01")',
    'timeadd("2017-11-22T00:00:00.5Z", "1ms")',
]


@pytest.mark.skipif(shutil.which("packer") is None, reason="packer is not installed")
def test_results_match_packer_console(tmp_path):
    (tmp_path / "t.pkr.hcl").write_text('variable "v" {\n  default = "x"\n}\n')
    expr = "jsonencode([" + ", ".join(PACKER_SAMPLE) + "])"
    # packer console prints only the last line read from a pipe: one expression, one run
    proc = subprocess.run(
        ["packer", "console", "t.pkr.hcl"],
        input=expr + "\n",
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    theirs = json.loads(proc.stdout)
    ours = json.loads(_eval(expr))
    for text, a, b in zip(PACKER_SAMPLE, ours, theirs, strict=True):
        assert a == b, text

    # ... and a wrong type gets Packer's own words
    wrong = subprocess.run(
        ["packer", "console", "t.pkr.hcl"],
        input="upper([1])\n",
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode != 0
    with pytest.raises(EvalError) as exc:
        _eval("upper([1])")
    assert exc.value.message.removeprefix("upper(): ") in wrong.stdout + wrong.stderr


def test_console_prints_like_packer(tmp_path):
    (tmp_path / "t.pkr.hcl").write_text(
        'variable "name" {\n  default = "world"\n}\nlocals {\n  greeting = "hello ${var.name}"\n}\n'
    )
    from packwrap.commands.console import console_scope

    scope = console_scope(str(tmp_path / "t.pkr.hcl"), [("var", "name=you")])
    out, err = io.StringIO(), io.StringIO()
    lines = 'local.greeting\n\n{a = [1, "x"]}\nupper([1])\n1 +\npath.root\nnull\ntrue\n'
    failures = run_console(scope, io.StringIO(lines), out, err)
    assert failures == 2
    assert out.getvalue().splitlines()[0] == "hello you"
    assert '"a": [' in out.getvalue()
    assert out.getvalue().splitlines()[-3:] == [str(tmp_path), "null", "true"]
    errors = err.getvalue().splitlines()
    assert errors[0] == '<stdin>:4: upper(): Invalid value for "str" parameter: string required.'
    assert errors[1].startswith("<stdin>:5: ")
    assert render([1, {"b": "c"}]) == json.dumps([1, {"b": "c"}], indent=2)


def test_console_command_exit_codes(tmp_path):
    good = tmp_path / "good.pkr.hcl"
    good.write_text('locals {\n  x = "y"\n}\n')
    exprs = tmp_path / "in.txt"
    exprs.write_text('local.x\nsha1("a")\n')
    with exprs.open() as stdin:
        proc = run_cli("console", str(good), stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["y", "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"]

    bad = tmp_path / "bad" / "t.pkr.hcl"
    bad.parent.mkdir()
    bad.write_text("locals {\n  x = nosuch(1)\n}\n")
    with exprs.open() as stdin:
        proc = run_cli("console", str(bad), stdin=stdin)
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert f"{bad}:2" in proc.stderr and "nosuch() is not supported" in proc.stderr
