"""fetch-iso finds HCL and JSON projects alike and reads their media variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from packwrap.cli import main
from packwrap.media.project import _parse_variables, find_project
from packwrap.template.pkrvars import update_pkrvars


@pytest.mark.parametrize("fmt", ["hcl", "json"])
def test_project_media_variables(tmp_path: Path, fmt: str):
    project = tmp_path / "p"
    assert main(["new", "openbsd-77", str(project), "--format", fmt, "--no-root-password"]) == 0
    found = find_project(project)
    assert found is not None
    assert (found.release, found.arch, found.iso_file) == ("7.7", "amd64", "install77.iso")
    assert found.mirrors == ["https://cdn.openbsd.org/pub/OpenBSD"]
    assert found.vars_file.name == f"openbsd-77.auto.pkrvars.{fmt}"
    # The fallback reader (used before iso_url has a value) agrees with the template model.
    templates = sorted(project.glob(f"*.pkr.{fmt}"))
    var_files = sorted(project.glob(f"*.auto.pkrvars.{fmt}"))
    raw = _parse_variables(templates, var_files)
    assert raw["release"] == "7.7" and raw["iso_file"] == "install77.iso"


def test_directory_without_project(tmp_path: Path):
    assert find_project(tmp_path) is None


def test_the_fallback_reader_reads_values_as_a_build_does(tmp_path: Path):
    """Before the first fetch-iso the template cannot load (iso_url has no value); the
    plain values are then read with the template reader, escapes and all."""
    (tmp_path / "t.pkr.hcl").write_text(
        'variable "iso_url" {\n  type = string\n}\n\n'
        'variable "release" {\n  default = "7.6"\n}\n\n'
        'variable "arch" {\n  default = "amd64"\n}\n'
    )
    vars_file = tmp_path / "t.auto.pkrvars.hcl"
    vars_file.write_text("arch = var.elsewhere # not a plain value: the default stays\n")
    update_pkrvars(vars_file, {"iso_file": 'in"stall ${x}.iso', "mirror": ["https://m/%{y"]})
    found = find_project(tmp_path)
    assert found is not None
    assert (found.release, found.arch) == ("7.6", "amd64")
    assert found.iso_file == 'in"stall ${x}.iso'
    assert found.mirrors == ["https://m/%{y"]


@pytest.mark.parametrize(
    ("variables", "wants"),
    [
        ([], False),  # sets from the ISO
        (["sets_location=http"], True),  # the build serves the cached sets
        (["sets_location=http", "sets_http_server=cdn.openbsd.org", "hermetic_network=false"],
         False),  # a remote mirror: nothing to fetch
    ],
)  # fmt: skip
def test_a_project_taking_sets_from_the_build_wants_them_fetched(tmp_path, variables, wants):
    project = tmp_path / "p"
    args = ["new", "openbsd-76", str(project), "--builder", "qemu", "--no-root-password"]
    for v in variables:
        args += ["--var", v]
    assert main(args) == 0
    found = find_project(project)
    assert found is not None and found.wants_sets is wants
