"""Variables: Packer's precedence, types, validation, required and undeclared values."""

from __future__ import annotations

from pathlib import Path

import pytest

from packwrap.errors import PackwrapError, UsageError
from packwrap.template import load_template

DECL = """
variable "v" {
  type    = string
  default = "default"
}

variable "n" {
  type    = number
  default = 1
}

variable "flag" {
  type    = bool
  default = false
}

variable "sets" {
  type    = list(string)
  default = ["base"]
}

variable "disk" {
  type    = object({ size = string, format = string })
  default = { size = "4G", format = "raw" }
}

source "qemu" "x" {
  vm_name = var.v
}

build {
  sources = ["source.qemu.x"]
}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "t.pkr.hcl").write_text(DECL)
    return tmp_path


def vfile(project: Path, name: str, value: str) -> Path:
    path = project / name
    path.write_text(f'v = "{value}"\n')
    return path


def test_default(project):
    assert load_template(project, env={}).variables["v"] == "default"


def test_env_beats_default(project):
    t = load_template(project, env={"PKR_VAR_v": "env"})
    assert t.variables["v"] == "env"
    assert t.builds[0].source.body.values["vm_name"] == "env"


def test_auto_pkrvars_beat_env_and_apply_in_lexical_order(project):
    vfile(project, "b.auto.pkrvars.hcl", "auto-b")
    vfile(project, "a.auto.pkrvars.hcl", "auto-a")
    t = load_template(project, env={"PKR_VAR_v": "env"})
    assert t.variables["v"] == "auto-b"


def test_var_file_beats_auto_pkrvars(project):
    vfile(project, "a.auto.pkrvars.hcl", "auto")
    f = vfile(project, "mine.pkrvars.hcl", "file")
    assert load_template(project, var_files=[f], env={}).variables["v"] == "file"


def test_var_beats_auto_pkrvars_and_env(project):
    vfile(project, "a.auto.pkrvars.hcl", "auto")
    t = load_template(project, var_args=["v=cli"], env={"PKR_VAR_v": "env"})
    assert t.variables["v"] == "cli"


def test_command_line_order_between_var_and_var_file(project):
    f = vfile(project, "mine.pkrvars.hcl", "file")
    later_file = load_template(project, settings=[("var", "v=cli"), ("file", str(f))], env={})
    later_var = load_template(project, settings=[("file", str(f)), ("var", "v=cli")], env={})
    assert later_file.variables["v"] == "file"
    assert later_var.variables["v"] == "cli"
    # several -var for one name: the last wins
    t = load_template(project, var_args=["v=one", "v=two"], env={})
    assert t.variables["v"] == "two"


def test_var_value_may_contain_equals(project):
    assert load_template(project, var_args=["v=a=b"], env={}).variables["v"] == "a=b"


def test_types_convert_cli_and_env_values(project):
    t = load_template(
        project,
        var_args=["n=42", "flag=true", 'sets=["base", "comp"]'],
        env={"PKR_VAR_disk": '{ size = "8G", format = "qcow2" }'},
    )
    assert t.variables["n"] == 42
    assert t.variables["flag"] is True
    assert t.variables["sets"] == ["base", "comp"]
    assert t.variables["disk"] == {"size": "8G", "format": "qcow2"}


def test_json_var_file(project):
    f = project / "x.pkrvars.json"
    f.write_text('{"n": 7, "sets": ["a"]}')
    t = load_template(project, var_files=[f], env={})
    assert (t.variables["n"], t.variables["sets"]) == (7, ["a"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["n=many"], "variable 'n' (-var n): 'many' is not a number"),
        (["flag=maybe"], "'maybe' is not a bool"),
        (["sets=[1,"], "cannot read '[1,' as list(string)"),
        (["nope=1"], "variable 'nope' is not declared"),
        (["novalue"], "expected NAME=VALUE"),
    ],
)
def test_bad_cli_values(project, args, message):
    with pytest.raises(PackwrapError) as info:
        load_template(project, var_args=args, env={})
    assert message in str(info.value)


def test_undeclared_in_var_file_is_a_warning(project):
    f = project / "x.pkrvars.hcl"
    f.write_text('v = "ok"\nunknown = 1\n')
    t = load_template(project, var_files=[f], env={})
    assert t.variables["v"] == "ok"
    assert t.warnings == [f"{f}:2: undeclared variable 'unknown' is ignored"]


def test_undeclared_var_is_a_usage_error(project):
    with pytest.raises(UsageError):
        load_template(project, var_args=["unknown=1"], env={})


def test_wrong_type_in_var_file_names_file_and_line(project):
    f = project / "x.pkrvars.hcl"
    f.write_text('v = "ok"\n\nn = "lots"\n')
    with pytest.raises(PackwrapError) as info:
        load_template(project, var_files=[f], env={})
    assert str(info.value).startswith(f"{f}:3: variable 'n'")


def test_missing_var_file(project):
    with pytest.raises(UsageError, match="variable file not found"):
        load_template(project, var_files=[project / "nope.pkrvars.hcl"], env={})


def test_required_variable(tmp_path):
    (tmp_path / "t.pkr.hcl").write_text(
        'variable "must" {\n  type = string\n}\nsource "qemu" "x" {}\n'
        'build {\n  sources = ["source.qemu.x"]\n}\n'
    )
    with pytest.raises(PackwrapError) as info:
        load_template(tmp_path, env={})
    assert str(info.value).startswith(f"{tmp_path / 't.pkr.hcl'}:1: variable 'must' has no default")
    assert load_template(tmp_path, var_args=["must=x"], env={}).variables["must"] == "x"


def test_validation_block(tmp_path):
    (tmp_path / "t.pkr.hcl").write_text(
        """variable "size" {
  type    = string
  default = "4G"
  validation {
    condition     = can(regex_replace(var.size, "^[0-9]+[MG]$", "")) && length(var.size) > 1
    error_message = "The size must look like 4G."
  }
  validation {
    condition     = var.size != "0G"
    error_message = "The size must not be zero."
  }
}
source "qemu" "x" {}
build {
  sources = ["source.qemu.x"]
}
"""
    )
    assert load_template(tmp_path, env={}).variables["size"] == "4G"
    with pytest.raises(PackwrapError) as info:
        load_template(tmp_path, var_args=["size=0G"], env={})
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 't.pkr.hcl'}:9: invalid value for variable 'size'")
    assert "The size must not be zero." in message


def test_sensitive_values_are_collected(tmp_path):
    (tmp_path / "t.pkr.hcl").write_text(
        'variable "pw" {\n  default   = "s3cret"\n  sensitive = true\n}\n'
        'source "qemu" "x" {}\nbuild {\n  sources = ["source.qemu.x"]\n}\n'
    )
    t = load_template(tmp_path, var_args=["pw=other"], env={})
    assert t.sensitive == {"other"}


def test_variables_block_and_locals_cycle(tmp_path):
    (tmp_path / "t.pkr.hcl").write_text(
        'variables {\n  a = "x"\n}\nlocals {\n  p = local.q\n  q = local.p\n}\n'
        'source "qemu" "x" {\n  n = var.a\n}\nbuild {\n  sources = ["source.qemu.x"]\n}\n'
    )
    with pytest.raises(PackwrapError, match="refers to itself"):
        load_template(tmp_path, env={})


def test_variable_in_default_is_refused(tmp_path):
    (tmp_path / "t.pkr.hcl").write_text(
        'variable "a" {\n  default = "x"\n}\nvariable "b" {\n  default = var.a\n}\n'
    )
    with pytest.raises(PackwrapError) as info:
        load_template(tmp_path, env={})
    assert str(info.value) == (
        f"{tmp_path / 't.pkr.hcl'}:5: default = var.a: "
        "variables may not be used in a variable default"
    )


def test_a_malformed_secret_is_not_echoed(tmp_path):
    (tmp_path / "t.pkr.hcl").write_text(
        'variable "pin" {\n  type      = number\n  default   = 1\n  sensitive = true\n}\n'
    )
    with pytest.raises(PackwrapError) as info:
        load_template(tmp_path, var_args=["pin=hunter2"], env={})
    assert "hunter2" not in str(info.value)
    assert "'<sensitive>' is not a number" in str(info.value)


def test_env_outside_a_variable_default_is_a_packwrap_extension(tmp_path):
    (tmp_path / "t.pkr.hcl").write_text(
        'variable "home" {\n  default = env("HOME")\n}\n'
        'source "qemu" "x" {\n  a = env("USER")\n  b = var.home\n}\n'
        'build {\n  sources = ["source.qemu.x"]\n}\n'
    )
    t = load_template(tmp_path, env={"HOME": "/h", "USER": "u"})
    assert t.builds[0].source.body.values == {"a": "u", "b": "/h"}
    assert t.warnings == [
        'env("USER") is used outside a variable default: packwrap allows that, '
        "but Packer does not (move it into a variable default)"
    ]


def test_json_var_file_strings_are_literal(tmp_path):
    """Packer reads *.pkrvars.json with no evaluation context: "${b}" stays as written."""
    from packwrap.template import load_template

    (tmp_path / "t.pkr.hcl").write_text(
        'variable "mirror" {\n  type = string\n}\n'
        'source "null" "x" {\n  communicator = "none"\n}\n'
        'build {\n  sources = ["source.null.x"]\n}\n'
    )
    (tmp_path / "v.auto.pkrvars.json").write_text('{"mirror": "http://x/${b}"}')
    template = load_template(tmp_path)
    assert template.variables["mirror"] == "http://x/${b}"
