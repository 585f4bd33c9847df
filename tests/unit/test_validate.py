"""`packwrap validate`: every problem at once, as file:line: message, and the exit code."""

from __future__ import annotations

import shutil
import types
from pathlib import Path

import pytest

from packwrap.cli import main
from packwrap.config.schema import BOOL, INT, Option, Schema

DATA = Path(__file__).resolve().parent.parent / "data"


def _no_both(config, problem):
    if config.get("iso_url") and config.get("kernel"):
        problem("iso_url and kernel conflict; set only one", "kernel")


class FakeBuilder:
    """A test-only builder: the unit seam is packwrap.plugins.builder_for."""

    type_name = "fake"
    schema = Schema(
        [
            Option("vm_name", required=True),
            Option("memory", INT, default=512),
            Option("headless", BOOL, default=False),
            Option("iso_url"),
            Option("kernel"),
            Option("format", default="raw", choices=("raw", "qcow2")),
            Option("cdrom", aliases=("iso_image",)),
        ],
        [_no_both],
    )


@pytest.fixture
def fake_plugin(monkeypatch):
    import packwrap.plugins

    real = packwrap.plugins.builder_for
    monkeypatch.setattr(
        packwrap.plugins, "builder_for", lambda t: FakeBuilder if t == "fake" else real(t)
    )


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["validate", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


GOOD = """variable "mem" {
  type    = number
  default = 1024
}

source "fake" "a" {
  vm_name = "a"
  memory  = var.mem
}

build {
  sources = ["source.fake.a"]
}
"""

BAD = """source "fake" "a" {
  vm_nam   = "typo"
  memory   = "lots"
  headless = "sure"
  iso_url  = "x.iso"
  kernel   = "bsd.rd"
}

source "fake" "b" {
  vm_name = "b"
  format  = "vmdk"
}

build {
  sources = ["source.fake.a", "source.fake.b"]
}
"""


def test_clean_template_is_valid(tmp_path, capsys, fake_plugin):
    (tmp_path / "t.pkr.hcl").write_text(GOOD)
    code, out, err = run(capsys, str(tmp_path))
    assert (code, out, err) == (0, "The configuration is valid.\n", "")


def test_every_problem_is_listed_with_file_and_line(tmp_path, capsys, fake_plugin):
    path = tmp_path / "t.pkr.hcl"
    path.write_text(BAD)
    code, out, err = run(capsys, str(path))
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        f"{path}:2: unknown option 'vm_nam'; did you mean 'vm_name'?",
        f"{path}:3: option 'memory': expected int, got 'lots'",
        f"{path}:4: option 'headless': expected bool, got 'sure'",
        f"{path}:1: missing required option 'vm_name'",
        f"{path}:11: option 'format': 'vmdk' is not one of raw, qcow2",
        "Error: 5 problems found.",
    ]


def test_conflict_check_runs_when_options_are_well_typed(tmp_path, capsys, fake_plugin):
    path = tmp_path / "t.pkr.hcl"
    path.write_text(
        'source "fake" "a" {\n  vm_name = "a"\n  iso_url = "x"\n  kernel  = "k"\n}\n'
        'build {\n  sources = ["source.fake.a"]\n}\n'
    )
    code, _, err = run(capsys, str(path))
    assert code == 1
    assert err.splitlines()[0] == f"{path}:4: iso_url and kernel conflict; set only one"


def test_only_and_except_limit_what_is_checked(tmp_path, capsys, fake_plugin):
    path = tmp_path / "t.pkr.hcl"
    path.write_text(BAD)
    code, _, err = run(capsys, str(path), "-only=fake.b")
    assert code == 1 and err.splitlines() == [
        f"{path}:11: option 'format': 'vmdk' is not one of raw, qcow2",
        "Error: 1 problem found.",
    ]
    code, _, err = run(capsys, str(path), "--except", "fake.*")
    assert code == 2 and "selects no build" in err


def test_var_spellings_and_var_file(tmp_path, capsys, fake_plugin):
    (tmp_path / "t.pkr.hcl").write_text(GOOD)
    vf = tmp_path / "bad.pkrvars.hcl"
    vf.write_text("mem = 2048\n")
    assert run(capsys, str(tmp_path), "--var", "mem=1")[0] == 0
    assert run(capsys, str(tmp_path), "-var=mem=1", f"-var-file={vf}")[0] == 0
    code, _, err = run(capsys, str(tmp_path), "-var", "mem=many")
    assert code == 1 and "'many' is not a number" in err


def test_aliases_are_accepted(tmp_path, capsys, fake_plugin):
    path = tmp_path / "t.pkr.hcl"
    path.write_text(
        'source "fake" "a" {\n  vm_name   = "a"\n  iso_image = "x.iso"\n}\n'
        'build {\n  sources = ["source.fake.a"]\n}\n'
    )
    assert run(capsys, str(path))[0] == 0


def test_secrets_are_masked_in_problems(tmp_path, capsys, fake_plugin):
    path = tmp_path / "t.pkr.hcl"
    path.write_text(
        'variable "fmt" {\n  default   = "hunter2"\n  sensitive = true\n}\n'
        'source "fake" "a" {\n  vm_name = "a"\n  format  = var.fmt\n}\n'
        'build {\n  sources = ["source.fake.a"]\n}\n'
    )
    code, _, err = run(capsys, str(path))
    assert code == 1
    assert "hunter2" not in err and "<sensitive>" in err


def test_syntax_only_does_not_evaluate(tmp_path, capsys, fake_plugin):
    path = tmp_path / "t.pkr.hcl"
    build = 'build {\n  sources = ["source.fake.a"]\n}\n'
    path.write_text('source "fake" "a" {\n  vm_name = var.undeclared\n}\n' + build)
    assert run(capsys, str(path), "-syntax-only") == (0, "The configuration is valid.\n", "")
    code, _, err = run(capsys, str(path))
    assert code == 1 and f"{path}:2:" in err
    path.write_text('source "fake" "a" {\n  vm_name = \n}\n')
    code, _, err = run(capsys, str(path), "-syntax-only")
    assert code == 1 and f"{path}:2: HCL syntax error" in err


def test_unclaimed_source_type_is_handed_to_packer(tmp_path, capsys):
    path = tmp_path / "t.pkr.hcl"
    path.write_text(
        'source "null" "n" {\n  communicator = "none"\n}\n'
        'build {\n  sources = ["source.null.n"]\n}\n'
    )
    code, out, err = run(capsys, str(path))
    assert code == 0, err
    assert "null.n: no packwrap builder for source type 'null'" in out
    assert "hands it to a real packer binary" in out
    if shutil.which("packer") is None:
        assert "checked for syntax only" in out


def test_response_file_is_linted_with_the_release(tmp_path, capsys, fake_plugin, monkeypatch):
    (tmp_path / "t.pkr.hcl").write_text(
        GOOD.replace("variable", 'variable "release" {\n  default = "7.5"\n}\n\nvariable', 1)
    )
    (tmp_path / "http").mkdir()
    conf = tmp_path / "http" / "install.conf"
    conf.write_text("System hostname = x\nBogus question = y\n")
    seen = {}

    def lint(text, release, *, path=None, answers_context=None, arch=None):
        seen["args"] = (text, release, path)
        return [
            types.SimpleNamespace(line=1, severity="warning", message="odd spacing"),
            types.SimpleNamespace(line=2, severity="error", message="unknown question"),
        ]

    monkeypatch.setattr("packwrap.autoinstall.lint.lint", lint)
    code, _, err = run(capsys, str(tmp_path))
    assert code == 1
    assert err.splitlines() == [
        f"Warning: {conf}:1: odd spacing",
        f"{conf}:2: unknown question",
        "Error: 1 problem found.",
    ]
    assert seen["args"] == (conf.read_text(), "7.5", str(conf))


def test_real_qemu_schema_reports_problems(tmp_path, capsys):
    pytest.importorskip("packwrap_qemu.config")
    path = tmp_path / "t.pkr.hcl"
    path.write_text(
        'source "qemu" "q" {\n  iso_url      = "x.iso"\n  iso_checksum = "none"\n'
        '  memmory      = 512\n  communicator = "none"\n  format       = "vmdk"\n}\n'
        'build {\n  sources = ["source.qemu.q"]\n}\n'
    )
    code, _, err = run(capsys, str(path))
    assert code == 1
    lines = err.splitlines()
    assert f"{path}:4: unknown option 'memmory'; did you mean 'memory'?" in lines
    assert any(line.startswith(f"{path}:6: option 'format'") for line in lines)


def test_seed_demo_validates_with_the_openbsd_vmm_builder(capsys):
    code, out, err = run(capsys, str(DATA / "seed-demo.json"))
    assert (code, err) == (0, ""), err
    assert out.endswith("The configuration is valid.\n")


def test_provisioners_and_post_processors_are_prepared_too(tmp_path, capsys, fake_plugin):
    pytest.importorskip("packwrap.postprocess")
    pytest.importorskip("packwrap.provision.step")
    path = tmp_path / "t.pkr.hcl"
    path.write_text(
        GOOD.replace(
            'sources = ["source.fake.a"]',
            'sources = ["source.fake.a"]\n\n'
            '  provisioner "shell" {\n    inlin = ["true"]\n  }\n\n'
            '  provisioner "ansible" {}\n\n'
            '  post-processor "checksum" {\n    outptu = "sums.txt"\n  }\n\n'
            '  post-processor "docker-push" {}',
        )
    )
    code, _, err = run(capsys, str(path))
    assert code == 1
    lines = err.splitlines()
    assert lines[0] == f"{path}:15: unknown option 'inlin'; did you mean 'inline'?"
    assert lines[1].startswith(f"{path}:18: provisioner type 'ansible' is not supported")
    assert lines[2] == f"{path}:21: unknown option 'outptu'; did you mean 'output'?"
    assert lines[3].startswith(f"{path}:24: post-processor 'docker-push' is not supported")
    assert lines[4] == "Error: 4 problems found."
