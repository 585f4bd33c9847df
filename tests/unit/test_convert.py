"""`packwrap convert`: legacy JSON -> HCL2 that packer accepts and that means the same."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from packwrap.cli import main
from packwrap.template import load_template

DATA = Path(__file__).resolve().parent.parent / "data"
PACKER = shutil.which("packer") or ("/usr/bin/packer" if Path("/usr/bin/packer").exists() else None)
needs_packer = pytest.mark.skipif(PACKER is None, reason="packer is not installed")

RICH = """{
  "description": "A rich template",
  "min_packer_version": "1.5.0",
  "variables": {
    "name": "demo",
    "home": "{{env `HOME`}}",
    "secret": "s3cr3t",
    "needed": null,
    "mixed": "{{user `name`}}-x"
  },
  "sensitive-variables": ["secret"],
  "builders": [
    {"type": "null", "name": "one", "communicator": "none"},
    {"type": "null", "communicator": "none"}
  ],
  "provisioners": [
    {"type": "shell-local", "inline": ["echo {{user `mixed`}} ${HOME} {{env `USER`}}"],
     "only": ["one"]},
    {"type": "shell-local", "inline": ["echo {{uuid}} {{pwd}} {{ build_name }}"]}
  ],
  "post-processors": [
    "compress",
    [{"type": "manifest", "output": "m-{{user `name`}}.json"},
     {"type": "checksum", "checksum_types": ["sha256"]}]
  ]
}
"""


def packer(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PACKER, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def convert(tmp_path: Path, capsys, source: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["convert", str(source), *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_seed_demo_converts(tmp_path, capsys):
    src = tmp_path / "seed-demo.json"
    shutil.copy(DATA / "seed-demo.json", src)
    code, out, err = convert(tmp_path, capsys, src)
    assert code == 0, err
    dest = tmp_path / "seed-demo.pkr.hcl"
    assert out == f"Wrote {dest}\n"
    text = dest.read_text()
    assert 'source "openbsd-vmm" "packer-obsd64-vmm-amd64" {' in text
    assert 'sources = ["source.openbsd-vmm.packer-obsd64-vmm-amd64"]' in text
    converted = load_template(dest, env={}).builds
    legacy = load_template(src, env={}).builds
    assert [b.name for b in converted] == ["openbsd-vmm.packer-obsd64-vmm-amd64"]
    assert converted[0].source.body.values == legacy[0].source.body.values


@needs_packer
def test_seed_demo_conversion_passes_packer_fmt_and_syntax_check(tmp_path, capsys):
    src = tmp_path / "seed-demo.json"
    shutil.copy(DATA / "seed-demo.json", src)
    out = tmp_path / "demo.pkr.hcl"
    assert convert(tmp_path, capsys, src, "-o", str(out))[0] == 0
    fmt = packer("fmt", "-check", "-diff", str(out), cwd=tmp_path)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    val = packer("validate", "-syntax-only", str(out), cwd=tmp_path)
    assert val.returncode == 0, val.stdout + val.stderr


@needs_packer
def test_rich_template_conversion_is_valid_for_packer(tmp_path, capsys):
    src = tmp_path / "rich.json"
    src.write_text(RICH)
    code, _, err = convert(tmp_path, capsys, src)
    assert code == 0, err
    dest = tmp_path / "rich.pkr.hcl"
    text = dest.read_text()
    assert 'default = env("HOME")' in text
    assert "sensitive = true" in text
    assert 'locals {\n  mixed = "${var.name}-x"\n}' in text  # var-using default: a local
    assert '"echo ${local.mixed} \\u0024{HOME} ${var.env_USER}"' in text  # hcl_emit's rule
    assert "{{ build_name }}" in text
    assert 'only   = ["null.one"]' in text
    assert "post-processors {" in text
    fmt = packer("fmt", "-check", "-diff", str(dest), cwd=tmp_path)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    val = packer("validate", "-var", "needed=x", str(dest), cwd=tmp_path)
    assert val.returncode == 0, val.stdout + val.stderr
    # and packwrap reads it the same way as the legacy original
    hcl = load_template(dest, var_args=["needed=x"], env={"USER": "u", "HOME": "/h"})
    old = load_template(src, var_args=["needed=x"], env={"USER": "u", "HOME": "/h"})
    assert hcl.variables["home"] == old.variables["home"] == "/h"
    assert hcl.locals["mixed"] == old.variables["mixed"] == "demo-x"
    assert [p.body.values["inline"] for p in hcl.builds[0].provisioners][0] == [
        "echo demo-x ${HOME} u"
    ]
    assert [[p.type for p in c] for c in hcl.builds[0].post_processors] == [
        [p.type for p in c] for c in old.builds[0].post_processors
    ]


def test_refuses_to_overwrite_without_force(tmp_path, capsys):
    src = tmp_path / "seed.json"
    shutil.copy(DATA / "seed-demo.json", src)
    dest = tmp_path / "seed.pkr.hcl"
    dest.write_text("# mine\n")
    code, _, err = convert(tmp_path, capsys, src)
    assert code == 1
    assert err == f"Error: {dest}: already exists; use --force to overwrite it\n"
    assert dest.read_text() == "# mine\n"
    assert convert(tmp_path, capsys, src, "--force")[0] == 0
    assert "openbsd-vmm" in dest.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed.json", "seed.pkr.hcl"]


def test_bad_input_is_one_error_line(tmp_path, capsys):
    src = tmp_path / "x.json"
    src.write_text('{\n  "variables": {}\n}\n')
    code, _, err = convert(tmp_path, capsys, src)
    assert code == 1
    assert err.startswith(f"Error: {src}:1: not a legacy JSON template")
    assert not (tmp_path / "x.pkr.hcl").exists()
    src.write_text('{\n  "builders": [\n    {"type": "qemu",\n  ]\n}\n')
    code, _, err = convert(tmp_path, capsys, src)
    assert code == 1 and err.startswith(f"Error: {src}:4: JSON syntax error")


def test_output_name_must_be_pkr_hcl(tmp_path, capsys):
    src = tmp_path / "seed.json"
    shutil.copy(DATA / "seed-demo.json", src)
    code, _, err = convert(tmp_path, capsys, src, "-o", str(tmp_path / "out.hcl"))
    assert code == 2 and "must end in .pkr.hcl" in err
