"""validate lints what the build will serve: generated files follow the variables first."""

from __future__ import annotations

from pathlib import Path

from packwrap.cli import main
from packwrap.template.pkrvars import update_pkrvars


def test_validate_regenerates_then_lints(tmp_path: Path, capsys):
    project = tmp_path / "p"
    assert main(["new", "openbsd-76", str(project), "--builder", "qemu", "--no-root-password"]) == 0
    update_pkrvars(project / "openbsd-76.auto.pkrvars.hcl", {"hostname": "renamed"})
    assert main(["validate", str(project)]) == 0
    conf = (project / "http" / "install.conf.pkr.in").read_text()
    assert "System hostname = renamed" in conf
    assert "Regenerated http/install.conf.pkr.in" in capsys.readouterr().err


def test_validate_keeps_a_hand_edited_response_file_and_lints_it(tmp_path: Path, capsys):
    project = tmp_path / "p"
    assert main(["new", "openbsd-76", str(project), "--builder", "qemu", "--no-root-password"]) == 0
    conf = project / "http" / "install.conf.pkr.in"
    conf.write_text(conf.read_text() + "Location of sets = ftp\n")
    assert main(["validate", str(project)]) == 1
    assert conf.read_text().endswith("Location of sets = ftp\n")
    err = capsys.readouterr().err
    assert "install.conf.pkr.in:" in err and "ftp" in err
