"""The one HCL value writer (template/hcl_emit.py): one quoting rule for every caller, and
whatever value it writes, packwrap's loader (python-hcl2 + the expression evaluator) and
Packer read back the same value."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from packwrap.template import load_template
from packwrap.template.convert import convert_legacy
from packwrap.template.hcl_emit import (
    Attribute,
    Block,
    Expr,
    emit,
    literal,
    quote,
    template_fragment,
)
from packwrap.template.pkrvars import update_pkrvars

PACKER = shutil.which("packer")

# Variables without a type take any value as written; "w" starts with a comment around it.
TEMPLATE = (
    'variable "v" {}\n\nvariable "w" {}\n\n'
    'source "null" "n" {\n  communicator = "none"\n}\n\n'
    'build {\n  sources = ["source.null.n"]\n}\n'
)
EXISTING = '# settings\nw = "old" # keep this comment\n\nother = 1\n'


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("plain", '"plain"'),
        ('q" b\\', '"q\\" b\\\\"'),
        ("n\nr\rt\t", '"n\\nr\\rt\\t"'),
        ("\x00\x1b\x7f", '"\\u0000\\u001b\\u007f"'),
        ("x${y}", '"x\\u0024{y}"'),
        ("x%{y", '"x\\u0025{y"'),
        ("$${ %%{ $ % {", '"$\\u0024{ %\\u0025{ $ % {"'),
        ("é ✓ 𝄞", '"é ✓ 𝄞"'),
    ],
)
def test_one_quoting_rule(text, written):
    assert quote(text) == written
    assert literal(text) == written
    assert literal([text]) == f"[{written}]"


def test_template_mode_keeps_interpolation_live_and_escapes_the_rest():
    assert quote('<wait${var.w}> "%{ if x }"\n', template=True) == (
        '"<wait${var.w}> \\"%{ if x }\\"\\n"'
    )


def test_a_fragment_before_an_interpolation_does_not_join_it():
    assert template_fragment("cost: $") + "${var.x}" == "cost: \\u0024${var.x}"
    assert template_fragment("100%") + "{{ x }}" == "100\\u0025{{ x }}"
    assert template_fragment("a$", before_interpolation=False) == "a$"


def test_convert_keeps_a_dollar_before_a_call_literal(tmp_path):
    legacy = {
        "variables": {"v": "x"},
        "builders": [{"type": "null", "name": "n", "communicator": "none"}],
        "provisioners": [{"type": "shell-local", "inline": ["echo $${{user `v`}} %{x"]}],
    }
    text, _ = convert_legacy(json.dumps(legacy), "legacy.json")
    (tmp_path / "t.pkr.hcl").write_text(text)
    t = load_template(tmp_path)
    inline = t.builds[0].provisioners[0].body.values["inline"]
    assert inline == ["echo $$x %{x"]


def test_dict_keys_are_quoted_unless_plain_identifiers():
    assert literal({"a": 1, "a b": 2, "for": 3, "": 4}) == '{ a = 1, "a b" = 2, "for" = 3, "" = 4 }'


def test_values_without_an_hcl_literal_are_refused():
    with pytest.raises(ValueError):
        literal(float("nan"))
    with pytest.raises(TypeError):
        literal({1, 2})


def test_the_pkrvars_updater_writes_x_percent_brace_y_loadably(tmp_path):
    """The bug of issue 19: `x%{y` through the updater gave `unexpected '%'`."""
    (tmp_path / "t.pkr.hcl").write_text(TEMPLATE)
    path = tmp_path / "x.auto.pkrvars.hcl"
    path.write_text(EXISTING)
    update_pkrvars(path, {"v": "x%{y", "w": "a${b"})
    assert load_template(tmp_path).variables == {"v": "x%{y", "w": "a${b"}
    assert "# keep this comment" in path.read_text()


HAND_WRITTEN = 'v = "x$${y" # HCL\'s own escapes\nw = ["a$${", "}", "%%{ b", "$${c}"]\n'
HAND_WRITTEN_VALUES = {"v": "x${y", "w": ["a${", "}", "%{ b", "${c}"]}


def test_hcls_own_escapes_load_and_survive_an_update(tmp_path):
    """`$${` without a later `}` broke python-hcl2's tree (its token wants one)."""
    (tmp_path / "t.pkr.hcl").write_text(TEMPLATE)
    path = tmp_path / "x.auto.pkrvars.hcl"
    path.write_text(HAND_WRITTEN)
    assert load_template(tmp_path).variables == HAND_WRITTEN_VALUES
    update_pkrvars(path, {"w": HAND_WRITTEN_VALUES["w"]})  # rewritten by hcl_emit's rule
    assert path.read_text().startswith('v = "x$${y" # HCL\'s own escapes\n')  # kept as is
    assert load_template(tmp_path).variables == HAND_WRITTEN_VALUES


# --- round trip ----------------------------------------------------------------------------

# Any text, with the pieces that need quoting care (escapes, template marks) made likely.
_PIECES = ["${", "%{", "$${", "%%{", "$", "%", "{", "}", "\\", '"', "\n", "\\u0024{"]
_char = st.characters(codec="utf-8", exclude_categories=("Cs",))
_text = st.lists(st.one_of(st.sampled_from(_PIECES), _char), max_size=12).map("".join)
_numbers = st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False))
_scalars = st.one_of(st.none(), st.booleans(), _numbers, _text)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=8,
)
_TRICKY = ["x%{y", "x${y", "a$", "$${", "%%{ if", "\\u0024{", '"', "\\", "\n", "{{ .HTTPIP }}"]
_slow = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hcl")
    (d / "t.pkr.hcl").write_text(TEMPLATE)
    return d


@_slow
@given(value=_values, other=_values)
@example(value=_TRICKY, other={k: k for k in _TRICKY})
@example(value="x${y", other="x%{y")
def test_the_updater_round_trips_through_the_loader(tmp_path_factory, value, other):
    d = _project(tmp_path_factory)
    path = d / "x.auto.pkrvars.hcl"
    path.write_text(EXISTING.replace("other = 1", ""))
    update_pkrvars(path, {"w": value, "v": other})  # w replaced in place, v appended
    assert load_template(d).variables == {"v": other, "w": value}
    assert "# keep this comment" in path.read_text()


@_slow
@given(value=_values)
@example(value=_TRICKY)
@example(value="x${y")
def test_the_emitter_round_trips_through_the_loader(tmp_path_factory, value):
    d = _project(tmp_path_factory)
    variables = [
        Block("variable", ["v"], [Attribute("default", value)]),  # laid out over lines
        Block("variable", ["w"], [Attribute("default", Expr(literal(value)))]),  # one line
    ]
    (d / "t.pkr.hcl").write_text(emit(variables) + TEMPLATE.split("\n\n", 2)[2])
    assert load_template(d).variables == {"v": value, "w": value}


@_slow
@given(value=_values)
@example(value=_TRICKY)
@example(value="x${y")
def test_the_single_line_literal_round_trips_through_the_loader(tmp_path_factory, value):
    d = _project(tmp_path_factory)
    (d / "x.auto.pkrvars.hcl").write_text(f"v = {literal(value)}\nw = {literal([value])}\n")
    assert load_template(d).variables == {"v": value, "w": [value]}


@pytest.mark.skipif(PACKER is None, reason="packer is not installed")
def test_packer_reads_what_the_updater_and_the_emitter_wrote(tmp_path):
    names = [f"s{i}" for i in range(len(_TRICKY))]
    decls = [Block("variable", [n], [Attribute("type", Expr("string"))]) for n in names]
    text = emit(decls) + TEMPLATE.split("\n\n", 2)[2]
    (tmp_path / "t.pkr.hcl").write_text(text)
    update_pkrvars(tmp_path / "x.auto.pkrvars.hcl", dict(zip(names, _TRICKY, strict=True)))
    done = subprocess.run(
        [PACKER, "inspect", "."], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    for name, value in zip(names, _TRICKY, strict=True):
        assert f"var.{name}: {json.dumps(value)}" in done.stdout
