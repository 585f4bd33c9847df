"""The template corpus (tests/corpus/README.md): `packwrap validate` accepts every one;
`packer validate` (1.6.6) agrees on those whose features it knows."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.packwrap_runner import cli_env, run_cli

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
PACKER = shutil.which("packer")

# directory -> (template argument for validate, whether Packer 1.6.6 knows every feature)
TEMPLATES = {
    "arm64-uefi": (".", False),
    "amd64-cd-floppy": (".", False),
    "layered": (".", True),
    "legacy-json": ("openbsd.json", True),
    "vmm-disk-base": (".", False),
    "locals-heavy": (".", True),
    "pp-chains": (".", True),
    "var-validation": (".", False),
}
ENV = {"PACKWRAP_CORPUS_HTTP": "http"}


def copy(name: str, tmp_path: Path) -> Path:
    """A scratch copy: validate must not write, and packer wants no output dir there."""
    target = tmp_path / name
    shutil.copytree(CORPUS / name, target)
    return target


def test_the_corpus_is_the_one_the_readme_lists():
    dirs = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
    assert dirs == sorted(TEMPLATES) and len(dirs) >= 8
    readme = (CORPUS / "README.md").read_text()
    for name, (_, packer_knows) in TEMPLATES.items():
        row = next(ln for ln in readme.splitlines() if ln.startswith(f"| `{name}` |"))
        assert row.rstrip(" |").split("|")[-1].strip().startswith("yes" if packer_knows else "no")


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_packwrap_validates(name, tmp_path):
    target = copy(name, tmp_path)
    before = sorted(p.relative_to(target) for p in target.rglob("*"))
    template, _ = TEMPLATES[name]
    result = run_cli("validate", template, cwd=target, env=cli_env(**ENV))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The configuration is valid." in result.stdout
    assert sorted(p.relative_to(target) for p in target.rglob("*")) == before  # wrote nothing


@pytest.mark.skipif(PACKER is None, reason="packer not installed")
@pytest.mark.parametrize("name", sorted(n for n, (_, knows) in TEMPLATES.items() if knows))
def test_packer_validates_what_it_knows(name, tmp_path):
    target = copy(name, tmp_path)
    template, _ = TEMPLATES[name]
    proc = subprocess.run([PACKER, "validate", template], cwd=target, capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin", **ENV,
                          "HOME": str(tmp_path), "CHECKPOINT_DISABLE": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("var", "message"),
    [
        ("disk_gb=100", "openbsd.pkr.hcl:15: invalid value for variable 'disk_gb' (-var): "
                        "The disk_gb must be between 4 and 64."),
        ("release=7", "The release must look like 7.6."),
        ("arch=sparc64", "The arch must be amd64 or i386."),
    ],
)  # fmt: skip
def test_validation_blocks_reject_bad_values(var, message, tmp_path):
    target = copy("var-validation", tmp_path)
    result = run_cli("validate", "-var", var, cwd=target)
    assert result.returncode != 0 and message in result.stderr
