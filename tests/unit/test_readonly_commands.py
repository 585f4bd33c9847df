"""validate and lint write nothing; `packwrap regenerate` is the one command that rewrites
a project's generated files (besides `new`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from packwrap.cli import main
from packwrap.template.pkrvars import update_pkrvars

CONF = "http/install.conf.pkr.in"


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and directory under root: mode, mtime (ns) and content."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            st = path.lstat()
            content = path.read_bytes() if path.is_file() else None
            out[str(path.relative_to(root))] = (st.st_mode, st.st_mtime_ns, content)
    return out


@pytest.fixture
def project(qemu_project: Path) -> Path:
    return qemu_project


def record(project: Path) -> dict:
    return json.loads((project / ".packwrap" / "project.json").read_text())


def test_validate_and_lint_write_no_file(project: Path, monkeypatch, capsys):
    # out of date with the variables (a var file and -var), and a deleted generated file
    update_pkrvars(project / "openbsd-76.auto.pkrvars.hcl", {"hostname": "renamed"})
    (project / "http" / "disklabel").unlink()
    before = snapshot(project)
    monkeypatch.chdir(project)
    assert main(["validate", "-var", "hostname=other", "."]) == 0
    out = capsys.readouterr().out
    assert f"{CONF} is out of date (variables changed: hostname)" in out
    assert "http/disklabel is out of date (it is missing)" in out
    assert main(["validate", "."]) == 0
    assert main(["validate", "-syntax-only", "."]) == 0
    assert main(["validate", "-var", "site_set=true", "."]) == 1  # a problem found, still
    assert main(["lint"]) == 0
    assert main(["lint", CONF]) == 0
    assert main(["lint", "--release", "7.7"]) == 0
    conf = project / CONF
    conf.write_text(conf.read_text() + "# edited\n")
    before = snapshot(project)
    assert main(["validate", "-var", "hostname=other", "."]) == 0
    assert "edited by hand" in capsys.readouterr().err
    assert main(["lint"]) == 0
    assert snapshot(project) == before


def test_validate_lints_the_response_file_rendered_for_the_variables(project: Path, capsys):
    conf = (project / CONF).read_text()
    # site_set on with no site/ directory: the rendered file's site round fetches nothing
    assert main(["validate", "-var", "site_set=true", str(project)]) == 1
    err = capsys.readouterr().err
    assert f"{project / CONF}:" in err and "site/ directory" in err
    assert (project / CONF).read_text() == conf
    assert main(["validate", str(project)]) == 0


def test_lint_checks_what_the_build_would_serve(project: Path, monkeypatch, capsys):
    update_pkrvars(project / "openbsd-76.auto.pkrvars.hcl", {"site_set": True})
    monkeypatch.chdir(project)
    assert main(["lint"]) == 1
    out = capsys.readouterr()
    assert f"Note: {CONF} is out of date (variables changed: site_set)" in out.out
    assert "site/ directory" in out.err
    assert main(["lint", CONF]) == 0  # the file as it is on disk


def test_regenerate_writes_out_of_date_files_and_the_record(project: Path, capsys):
    update_pkrvars(project / "openbsd-76.auto.pkrvars.hcl", {"hostname": "renamed"})
    (project / "http" / "disklabel").unlink()
    assert main(["regenerate", str(project)]) == 0
    out = capsys.readouterr().out
    assert f"Regenerated {CONF} (variables changed: hostname)" in out
    assert "Regenerated http/disklabel (it is missing)" in out
    assert "System hostname = renamed" in (project / CONF).read_text()
    assert (project / "http" / "disklabel").is_file()
    assert record(project)["values"]["hostname"] == "renamed"
    before = snapshot(project)
    assert main(["regenerate", str(project)]) == 0
    assert capsys.readouterr().out == "The generated files are up to date.\n"
    assert snapshot(project) == before


def test_regenerate_keeps_a_hand_edited_file_unless_forced(project: Path, capsys):
    conf = project / CONF
    conf.write_text(conf.read_text() + "# mine\n")
    before = snapshot(project)
    assert main(["regenerate", "-var", "hostname=other", str(project)]) == 0
    err = capsys.readouterr().err
    assert err == f"Warning: {CONF} was edited by hand: kept (--force replaces it)\n"
    assert snapshot(project) == before
    assert main(["regenerate", "-var", "hostname=other", "-force", str(project)]) == 0
    assert "replacing a hand-edit" in capsys.readouterr().out
    assert "# mine" not in conf.read_text() and "System hostname = other" in conf.read_text()
    assert record(project)["values"]["hostname"] == "other"


def test_regenerate_refuses_bad_input_in_one_line_and_writes_nothing(
    project: Path, tmp_path: Path, capsys
):
    before = snapshot(project)
    assert main(["regenerate", "-var", "hostname=not a name!", str(project)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hostname" in err and "not a host name" in err
    assert snapshot(project) == before
    (project / ".packwrap" / "project.json").write_text("{broken")
    before = snapshot(project)
    assert main(["regenerate", str(project)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "project.json" in err
    assert snapshot(project) == before
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "t.pkr.hcl").write_text(
        'source "null" "n" {\n  communicator = "none"\n}\n\n'
        'build {\n  sources = ["source.null.n"]\n}\n'
    )
    assert main(["regenerate", str(plain)]) == 2
    assert "not a blueprint project" in capsys.readouterr().err
    assert main(["regenerate", "-bogus", str(plain)]) == 2


def test_a_build_handed_to_packer_warns_of_out_of_date_files(
    project: Path, tmp_path: Path, monkeypatch, capsys
):
    """packer serves http/ from disk, so it cannot get the files rendered for the build."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "packer").write_text("#!/bin/sh\necho fake packer ran\n")
    (bindir / "packer").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    (project / "extra.pkr.hcl").write_text(
        'source "null" "n" {\n  communicator = "none"\n}\n\n'
        'build {\n  sources = ["source.null.n"]\n}\n'
    )
    before = snapshot(project / "http")
    assert main(["build", "-only=null.n", "-var", "hostname=other", str(project)]) == 0
    out = capsys.readouterr()
    assert f"{CONF} is out of date" in out.out + out.err
    assert f"packer serves http/ as it is on disk, and {CONF} is out of date" in out.err
    assert snapshot(project / "http") == before


def test_one_release_rule(tmp_path: Path):
    from packwrap.blueprint.record import ProjectRecord, resolve_release

    rec = ProjectRecord(tmp_path / ".packwrap" / "project.json", {"release": "7.5"})
    variables = {"os_version": "7.7"}
    media = [["/isos/install78.iso"]]
    assert resolve_release(flag="8.0", record=rec, variables=variables, media=media) == "8.0"
    assert resolve_release(record=rec, variables=variables, media=media) == "7.5"
    assert resolve_release(variables=variables, media=media) == "7.7"
    assert resolve_release(variables={"release": True}, media=media) == "7.8"  # not a release
    assert resolve_release(default="7.6") == "7.6"
    assert resolve_release() is None


@pytest.mark.parametrize("text", ["[1, 2]", "{nope", "\udcff"])
def test_a_broken_record_is_one_error_naming_the_file(tmp_path: Path, text: str):
    from packwrap.blueprint.record import read_record
    from packwrap.errors import PackwrapError

    (tmp_path / ".packwrap").mkdir()
    (tmp_path / ".packwrap" / "project.json").write_bytes(text.encode(errors="surrogateescape"))
    with pytest.raises(PackwrapError) as exc:
        read_record(tmp_path)
    assert str(exc.value).startswith(f"{tmp_path / '.packwrap' / 'project.json'}: ")
    assert "\n" not in str(exc.value)
    assert read_record(tmp_path / "elsewhere") is None


def test_regenerate_that_cannot_write_is_one_line_and_leaves_no_temp_file(
    project: Path, monkeypatch, capsys
):
    import errno

    from packwrap.blueprint import project as project_mod

    def read_only(src, dst):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(project_mod.os, "replace", read_only)
    before = snapshot(project)
    assert main(["regenerate", "-var", "hostname=other", str(project)]) == 1
    err = capsys.readouterr().err
    assert err == f"Error: {project / CONF}: cannot write: Read-only file system\n"
    after = snapshot(project)
    assert after.keys() == before.keys()  # no temp file left
    assert {k: v for k, v in after.items() if v[2] is not None} == {
        k: v for k, v in before.items() if v[2] is not None
    }  # every file as it was (http/'s mtime moved: the temp file came and went)


def test_a_kept_hand_edit_keeps_warning_after_other_files_are_regenerated(project: Path, capsys):
    conf = project / CONF
    conf.write_text(conf.read_text() + "# mine\n")
    (project / "http" / "disklabel").unlink()
    assert main(["regenerate", "-var", "hostname=other", str(project)]) == 0
    assert (project / "http" / "disklabel").is_file() and "# mine" in conf.read_text()
    assert record(project)["values"]["hostname"] != "other"  # the edit still lags behind
    capsys.readouterr()
    assert main(["validate", "-var", "hostname=other", str(project)]) == 0
    assert "edited by hand" in capsys.readouterr().err
