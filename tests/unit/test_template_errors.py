"""Every bad template is one line naming file:line (never a traceback), with an exit code."""

from __future__ import annotations

import pytest

from packwrap.cli import main

BUILD = '\nbuild {\n  sources = ["source.qemu.x"]\n}\n'


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


CASES = [
    # (file name, content, expected line, message fragment)
    ("t.pkr.hcl", 'source "qemu" "x" {\n  memory =\n}\n' + BUILD, 2, "HCL syntax error"),
    (
        "t.pkr.hcl",
        'source "qemu" "x" {\n  a = nosuch(1)\n}\n' + BUILD,
        2,
        "a = nosuch(1): function nosuch() is not supported",
    ),
    (
        "t.pkr.hcl",
        'source "qemu" "x" {\n  a = [\n    1,\n    var.nope,\n  ]\n}\n' + BUILD,
        4,
        "variable var.nope is not declared",
    ),
    (
        "t.pkr.hcl",
        'source "qemu" "x" {\n  a = local.nope\n}\n' + BUILD,
        2,
        "local value local.nope is not defined",
    ),
    (
        "t.pkr.hcl",
        'source "qemu" "x" {\n  a = [1][*]\n}\n' + BUILD,
        2,
        "splat expressions ([*], .*) are not supported",
    ),
    (
        "t.pkr.hcl",
        'source "qemu" "x" {\n  a = 1\n  a = 2\n}\n' + BUILD,
        3,
        "attribute 'a' is set twice",
    ),
    (
        "t.pkr.hcl",
        'source "qemu" "x" {}\nsource "qemu" "x" {}\n' + BUILD,
        2,
        "source.qemu.x is defined twice",
    ),
    (
        "t.pkr.hcl",
        'source "qemu" "y" {}\n\nbuild {\n  sources = ["source.qemu.x"]\n}\n',
        4,
        "unknown source 'source.qemu.x' (defined sources: source.qemu.y)",
    ),
    ("t.pkr.hcl", 'source "qemu" "x" {}\nfoo {}\n' + BUILD, 2, "unsupported block type 'foo'"),
    (
        "t.pkr.hcl",
        'source "qemu" "x" {}\ndata "amazon-ami" "a" {}\n' + BUILD,
        2,
        "data sources are not supported",
    ),
    (
        "t.pkr.hcl",
        'source "qemu" "x" {}\nbuild {\n  sources = ["source.qemu.x"]\n  bogus = 1\n}\n',
        4,
        "build block: unknown argument 'bogus'",
    ),
    ("t.pkr.hcl", 'variable "a" {\n  type = list(strin)\n}\n', 2, "unsupported type constraint"),
    (
        "t.pkr.hcl",
        'variable "a" {\n  default = "x"\n  typo = 1\n}\n',
        3,
        "variable 'a': unknown argument 'typo'",
    ),
    (
        "t.pkr.hcl",
        'variable "a" {\n  type    = number\n  default = "x"\n}\n',
        3,
        "variable 'a' (default): 'x' is not a number",
    ),
    (
        "t.pkr.hcl",
        'source "qemu" "x" {\n  a = "${upper(1, 2)}"\n}\n' + BUILD,
        2,
        "upper(): wrong number of arguments",
    ),
    ("t.pkr.hcl", 'source "qemu" "x" {\n  a = "unterminated\n}\n' + BUILD, 2, "syntax error"),
    ("t.json", '{\n  "builders": [\n    {"type": "qemu",}\n  ]\n}\n', 3, "JSON syntax error"),
    (
        "t.json",
        '{\n  "builders": [\n    {"type": "qemu", "vm_name": "{{user `x`}}"}\n  ]\n}\n',
        3,
        "user variable 'x' is not declared",
    ),
    (
        "t.json",
        '{\n  "builders": [{"type": "qemu"}],\n  "bogus": 1\n}\n',
        3,
        "unknown top-level key 'bogus'",
    ),
    (
        "t.json",
        '{\n  "builders": [\n    {"vm_name": "x"}\n  ]\n}\n',
        3,
        'each builder needs a "type"',
    ),
    (
        "t.json",
        '{\n  "builders": [\n    {"type": "qemu"},\n    {"type": "qemu"}\n  ]\n}\n',
        4,
        "builder name 'qemu' is used twice",
    ),
    (
        "t.pkr.json",
        '{\n  "source": {"qemu": {"x": {"a": "${nope.b}"}}},\n'
        '  "build": {"sources": ["source.qemu.x"]}\n}\n',
        2,
        "unknown name 'nope'",
    ),
]


@pytest.mark.parametrize(("name", "content", "line", "message"), CASES)
def test_bad_template_is_one_line_with_file_and_line(
    tmp_path, capsys, name, content, line, message
):
    path = tmp_path / name
    path.write_text(content)
    code, err = run(capsys, "validate", str(path))
    assert code == 1, err
    assert err.startswith(f"Error: {path}:{line}: "), err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_missing_template(tmp_path, capsys):
    code, err = run(capsys, "validate", str(tmp_path / "nope.pkr.hcl"))
    assert (code, err) == (1, f"Error: {tmp_path / 'nope.pkr.hcl'}: no such file or directory\n")


def test_not_a_template(tmp_path, capsys):
    (tmp_path / "x.txt").write_text("")
    code, err = run(capsys, "validate", str(tmp_path / "x.txt"))
    assert code == 1 and "not a template" in err


def test_empty_directory(tmp_path, capsys):
    code, err = run(capsys, "validate", str(tmp_path))
    assert code == 1 and "no *.pkr.hcl or *.pkr.json template" in err


def test_undeclared_var_on_command_line_exits_2(tmp_path, capsys):
    (tmp_path / "t.pkr.hcl").write_text('source "qemu" "x" {}' + BUILD)
    code, err = run(capsys, "validate", str(tmp_path), "-var", "nope=1")
    assert code == 2
    assert err == "Error: -var 'nope=1': variable 'nope' is not declared in the template\n"


def test_unknown_flag_exits_2_with_hint(tmp_path, capsys):
    code, err = run(capsys, "validate", str(tmp_path), "-var-fil=x")
    assert code == 2 and "did you mean -var-file?" in err


def test_var_file_error_names_the_var_file(tmp_path, capsys):
    (tmp_path / "t.pkr.hcl").write_text('variable "a" {\n  default = "x"\n}\n')
    vf = tmp_path / "x.pkrvars.hcl"
    vf.write_text('a = "ok"\nb {\n}\n')
    code, err = run(capsys, "validate", str(tmp_path / "t.pkr.hcl"), f"-var-file={vf}")
    assert code == 1
    assert err.startswith(f"Error: {vf}:2: blocks are not allowed in a variable file")
