"""A bad value is reported once, where it was set: a var-file line, -var, PKR_VAR_ or
the variable's default; an option that only uses a variable names both places."""

from __future__ import annotations

from pathlib import Path

import pytest
from packwrap_qemu.builder import QemuBuilder
from packwrap_vmm.config import SCHEMA as VMM_SCHEMA

from packwrap.template import load_template

TEMPLATE = """\
variable "disk_size" {
  type    = string
  default = "8G"
}
variable "memory" {
  type    = number
  default = 1024
}
source "qemu" "q" {
  iso_url      = "i.iso"
  iso_checksum = "none"
  communicator = "none"
  disk_size    = var.disk_size
  memory       = var.memory
}
source "openbsd-vmm" "v" {
  vm_name          = "v"
  output_directory = "o"
  boot             = "/bsd.rd"
  disk_size        = "${var.disk_size}"
  memory           = "${var.memory}M"
}
build {
  sources = ["source.qemu.q", "source.openbsd-vmm.v"]
}
"""


def problems(tmp_path: Path, *, autos: str = "", env=None, settings=()) -> list[str]:
    (tmp_path / "t.pkr.hcl").write_text(TEMPLATE)
    if autos:
        (tmp_path / "t.auto.pkrvars.hcl").write_text(autos)
    template = load_template(tmp_path, settings=list(settings), env=env or {})
    found: list[str] = []
    for build, schema in zip(template.builds, (QemuBuilder.schema, VMM_SCHEMA), strict=True):
        for p in schema.prepare(build.source.body)[1]:
            if str(p) not in found:  # what `packwrap validate` prints: each text once
                found.append(str(p))
    return [f.replace(str(tmp_path) + "/", "") for f in found]


def test_a_var_file_value_is_reported_once_at_its_line(tmp_path):
    got = problems(tmp_path, autos='\n\ndisk_size = "lots"\n')
    assert got == [
        "t.auto.pkrvars.hcl:3: disk_size 'lots': expected a size like 1500M or 2G "
        "(a bare number is MiB)"
    ]


def test_a_var_argument_is_named_as_such(tmp_path):
    got = problems(tmp_path, settings=[("var", "disk_size=lots")])
    assert got == ["-var disk_size: disk_size 'lots': expected a size like 1500M or 2G "
                   "(a bare number is MiB)"]  # fmt: skip


def test_an_environment_variable_is_named(tmp_path):
    got = problems(tmp_path, env={"PKR_VAR_disk_size": "0"})
    assert got == ["PKR_VAR_disk_size: disk_size '0': must be greater than zero"]


def test_a_default_points_at_the_default_line(tmp_path):
    (tmp_path / "t.pkr.hcl").write_text(TEMPLATE.replace('"8G"', '"8Q"'))
    template = load_template(tmp_path, settings=[], env={})
    _, found, _ = QemuBuilder.schema.prepare(template.builds[0].source.body)
    assert [(Path(p.file).name, p.line) for p in found] == [("t.pkr.hcl", 3)]


def test_an_option_that_only_uses_a_variable_names_both_places(tmp_path):
    got = problems(tmp_path, autos="memory = 1.5\n")
    # qemu: memory = var.memory (bare: the var-file line); vmm: "${var.memory}M" (its own
    # line, and where var.memory was set)
    assert got == [
        "t.auto.pkrvars.hcl:1: memory 1.5: a bare number is MiB and must be whole; "
        "write 1536M, not 1.5",
        "t.pkr.hcl:21: memory '1.5M': must be a whole number of MiB "
        "(uses var.memory, set at t.auto.pkrvars.hcl:1)",
    ]


@pytest.mark.parametrize("value", ["8G", "8192", "1.5G"])
def test_good_values_load_clean(tmp_path, value):
    assert problems(tmp_path, settings=[("var", f"disk_size={value}")]) == []


def test_validate_of_a_new_project_reports_a_bad_size_once_at_its_pkrvars_line(
    tmp_path, capsys, monkeypatch
):
    from packwrap.cli import main

    assert main(["new", "openbsd-76", str(tmp_path / "p"), "--no-root-password"]) == 0
    pkrvars = tmp_path / "p" / "openbsd-76.auto.pkrvars.hcl"
    lines = pkrvars.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.startswith("disk_size "))
    lines[line - 1] = 'disk_size = "lots"'
    pkrvars.write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path / "p")
    capsys.readouterr()
    assert main(["validate"]) == 1
    problems = [t for t in capsys.readouterr().err.splitlines() if "disk_size" in t]
    assert problems == [
        f"openbsd-76.auto.pkrvars.hcl:{line}: disk_size 'lots': expected a size like 1500M "
        "or 2G (a bare number is MiB)"
    ]


def test_a_legacy_user_variable_points_at_its_default_or_the_var(tmp_path):
    (tmp_path / "t.json").write_text(
        '{\n  "variables": {\n    "disk": "lots"\n  },\n  "builders": [{"type": "openbsd-vmm",'
        ' "vm_name": "v", "output_directory": "o", "boot": "/bsd.rd",'
        ' "disk_size": "{{user `disk`}}"}]\n}\n'
    )
    for settings, where in (([], f"{tmp_path / 't.json'}:3"), ([("var", "disk=2x")], "-var disk")):
        template = load_template(tmp_path / "t.json", settings=settings, env={})
        _, found, _ = VMM_SCHEMA.prepare(template.builds[0].source.body)
        assert [str(p).split(": disk_size")[0] for p in found] == [where]


def test_build_reports_one_bad_variable_used_by_two_sources_once(tmp_path):
    from packwrap.config.schema import ConfigError

    (tmp_path / "t.pkr.hcl").write_text(TEMPLATE)
    template = load_template(tmp_path, settings=[("var", "disk_size=lots")], env={})
    found = [
        p
        for build, schema in zip(template.builds, (QemuBuilder.schema, VMM_SCHEMA), strict=True)
        for p in schema.prepare(build.source.body)[1]
    ]
    assert len(found) == 2  # one per source ...
    error = ConfigError(found)
    assert len(error.problems) == 1  # ... one for the user, as `packwrap build` prints it
    assert "(and" not in str(error)
