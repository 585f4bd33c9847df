"""Post-processor chains from real templates through `packwrap build`: `post-processors {}`
sequences, single blocks, only/except, keep_input_artifact, legacy JSON's nested arrays,
and the hand-off to packer of a build whose post-processor packwrap does not embed.

The templates use Packer's `null` source, claimed here by a stand-in builder (the unit
seam packwrap.plugins.builder_for), so the very same files go through `packer validate`.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import ClassVar

import pytest

from packwrap import plugins
from packwrap.build.artifact import Artifact
from packwrap.build.state import State
from packwrap.build.step import Step
from packwrap.cli import main
from packwrap.config.schema import STRING, Option, Schema

PACKER = shutil.which("packer")
needs_packer = pytest.mark.skipif(PACKER is None, reason="packer is not installed")


class StepDisk(Step):
    name = "disk"

    def run(self, state: State) -> None:
        out = Path(f"output-{state.source_name}")
        out.mkdir(exist_ok=True)
        (out / "disk.raw").write_bytes(state.source_name.encode() * 10)

    def cleanup(self, state: State) -> None:
        pass


class NullStandIn:
    type_name: ClassVar[str] = "null"
    schema: ClassVar[Schema] = Schema([Option("communicator", STRING, "none")])

    def steps(self, config):
        return [StepDisk()]

    def artifact(self, config, state):
        return Artifact("packwrap.null", "NULL", [f"output-{state.source_name}/disk.raw"],
                        "a disk")  # fmt: skip


@pytest.fixture(autouse=True)
def stand_in(monkeypatch, tmp_path: Path):
    real = plugins.builder_for
    monkeypatch.setattr(plugins, "builder_for", lambda t: NullStandIn if t == "null" else real(t))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PACKWRAP_LOG_DIR", str(tmp_path / "logs"))


CHAINS = """
source "null" "a" {
  communicator = "none"
}

source "null" "b" {
  communicator = "none"
}

build {
  sources = ["source.null.a", "source.null.b"]

  post-processors {
    post-processor "shell-local" {
      only   = ["null.a"]
      inline = ["echo \\"first $PACKER_BUILD_NAME $PACKER_BUILDER_TYPE\\" >> ran.txt"]
    }
    post-processor "artifice" {
      files               = ["output-${source.name}/disk.raw"]
      keep_input_artifact = true
    }
    post-processor "checksum" {
      checksum_types = ["sha1", "sha512"]
      output         = "{{.BuildName}}_{{.ChecksumType}}.sum"
    }
  }

  post-processor "shell-local" {
    except = ["null.a"]
    inline = ["echo \\"single $PACKER_BUILD_NAME\\" >> ran.txt"]
  }
}
"""


def test_hcl_chains_only_except_and_the_handed_on_artifact(tmp_path: Path, capsys) -> None:
    (tmp_path / "t.pkr.hcl").write_text(CHAINS)
    rc = main(["build", "-color=false", "-parallel-builds=1", "t.pkr.hcl"])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    ran = sorted((tmp_path / "ran.txt").read_text().splitlines())
    assert ran == ["first a null", "single b"]
    for name in ("a", "b"):
        sha1 = (tmp_path / f"{name}_sha1.sum").read_text()
        assert sha1.endswith("\tdisk.raw\n")
        assert (tmp_path / f"{name}_sha512.sum").exists()
    assert "    null.a: first a null" not in out  # redirected to the file, nothing printed
    # a: builder's (shell-local keeps it), shell-local's (the same: artifice keeps its
    # input), artifice's (checksum keeps its input), checksum's; b: its chain lost
    # shell-local (builder's, artifice's, checksum's), then the single shell-local's (the
    # builder's again). The summary names each artifact once: 3 each.
    artifacts = out.split("The artifacts of successful builds are:")[1]
    assert artifacts.count("--> null.a:") == 3
    assert artifacts.count("--> null.b:") == 3
    assert artifacts.count("Created artifact from files: output-a/disk.raw\n") == 1


@needs_packer
def test_packer_accepts_the_chains_template(tmp_path: Path) -> None:
    (tmp_path / "t.pkr.hcl").write_text(CHAINS)
    done = subprocess.run([PACKER, "validate", "t.pkr.hcl"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


ECHO_NAME = "echo $PACKER_BUILD_NAME > legacy-$PACKER_BUILD_NAME"
LEGACY = {
    "builders": [
        {"type": "null", "name": "a", "communicator": "none"},
        {"type": "null", "name": "b", "communicator": "none"},
    ],
    "post-processors": [
        [
            {"type": "shell-local", "inline": [ECHO_NAME]},
            {"type": "checksum", "checksum_types": ["sha224"], "output": "{{.BuildName}}.sum"},
        ],
        "manifest",
        {"type": "shell-local", "only": ["b"], "inline": ["touch only-$PACKER_BUILD_NAME"]},
    ],
}


def test_legacy_json_nested_arrays_are_chains(tmp_path: Path, capsys) -> None:
    (tmp_path / "t.json").write_text(json.dumps(LEGACY, indent=2))
    rc = main(["build", "-color=false", "t.json"])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    for name in ("a", "b"):
        assert (tmp_path / f"legacy-{name}").read_text() == f"{name}\n"
        assert (tmp_path / f"{name}.sum").read_text().endswith("\tdisk.raw\n")
    builds = json.loads((tmp_path / "packer-manifest.json").read_text())["builds"]
    assert sorted(b["name"] for b in builds) == ["a", "b"]
    assert [p.name for p in tmp_path.glob("only-*")] == ["only-b"]


def test_legacy_only_naming_no_builder_is_packers_error(tmp_path: Path, capsys) -> None:
    data = dict(LEGACY, **{"post-processors": [{"type": "manifest", "except": ["c"]}]})
    (tmp_path / "t.json").write_text(json.dumps(data, indent=2))
    assert main(["validate", "t.json"]) == 1
    err = capsys.readouterr().err
    assert "t.json:17: post-processor 1.1: 'except' specified builder 'c' not found" in err


@needs_packer
def test_packer_accepts_the_legacy_template(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text(json.dumps(LEGACY, indent=2))
    done = subprocess.run([PACKER, "validate", "t.json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


# --- a post-processor packwrap does not embed --------------------------------------------

FOREIGN = """
source "null" "a" {
  communicator = "none"
}

build {
  sources = ["source.null.a"]

  post-processor "checksum" {}

  post-processor "googlecompute-export" {
    paths = ["gs://bucket/x.tar.gz"]
  }
}
"""


def fake_packer(tmp_path: Path) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "packer"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/packer-argv"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bindir


def test_an_unembedded_post_processor_hands_the_whole_build_to_packer(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    (tmp_path / "t.pkr.hcl").write_text(FOREIGN)
    monkeypatch.setenv("PATH", f"{fake_packer(tmp_path)}:{os.environ['PATH']}")
    rc = main(["build", "-color=false", "t.pkr.hcl"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "null.a: post-processor 'googlecompute-export' is not embedded in packwrap" in out
    assert (tmp_path / "packer-argv").read_text().splitlines()[-2:] == ["-only=null.a",
                                                                        "t.pkr.hcl"]  # fmt: skip
    assert not (tmp_path / "output-a").exists()  # packwrap built nothing itself
    rc = main(["validate", "t.pkr.hcl"])
    out = capsys.readouterr().out
    assert "hands the whole build to a real packer binary" in out


def test_without_packer_it_is_one_file_line_problem_before_anything_runs(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    (tmp_path / "t.pkr.hcl").write_text(FOREIGN)
    monkeypatch.setenv("PATH", str(tmp_path))
    for command in ("build", "validate"):
        assert main([command, "t.pkr.hcl"]) == 1
        err = [line for line in capsys.readouterr().err.splitlines() if "googlecompute" in line]
        assert len(err) == 1
        assert "t.pkr.hcl:11: post-processor 'googlecompute-export' is not supported" in err[0]
        assert err[0].endswith("`packer` is not on PATH to hand the build to: install Packer, "
                               "or remove it")  # fmt: skip
    assert not (tmp_path / "output-a").exists()


def test_a_packwrap_only_post_processor_keeps_the_build_here(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    text = FOREIGN.replace('post-processor "checksum" {}', 'post-processor "signify" {\n'
                           '    private_key_file = "k.sec"\n  }')  # fmt: skip
    (tmp_path / "t.pkr.hcl").write_text(text)
    monkeypatch.setenv("PATH", f"{fake_packer(tmp_path)}:{os.environ['PATH']}")
    assert main(["validate", "t.pkr.hcl"]) == 1
    err = capsys.readouterr().err
    assert "it also uses signify, which only packwrap has" in err
    assert not (tmp_path / "packer-argv").exists()


OPTIONS = """
source "null" "a" {
  communicator = "none"
}

build {
  sources = ["source.null.a"]

  post-processor "shell-local" {
    inline           = ["echo hi"]
    environment_vars = ["A=b"]
    execute_command  = ["/bin/sh", "-c", "{{.Vars}} {{.Script}}"]
    inline_shebang   = "/bin/sh -e"
    only_on          = ["linux"]
    valid_exit_codes = [0, 3]
  }
  post-processor "artifice" {
    files               = ["x"]
    keep_input_artifact = false
  }
  post-processor "checksum" {
    checksum_types = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]
    output         = "packer_{{.BuildName}}_{{.BuilderType}}_{{.ChecksumType}}.checksum"
  }
}
"""


def test_the_options_packer_166_knows_validate_with_both(tmp_path: Path, capsys) -> None:
    # (shell-local's `env` map is newer than packer 1.6.6: unit tests cover it)
    (tmp_path / "t.pkr.hcl").write_text(OPTIONS)
    assert main(["validate", "t.pkr.hcl"]) == 0, capsys.readouterr().err
    if PACKER is not None:
        done = subprocess.run([PACKER, "validate", "t.pkr.hcl"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr


def test_a_build_packer_rejects_stays_here_with_packers_reason(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    (tmp_path / "t.pkr.hcl").write_text(FOREIGN)
    bindir = fake_packer(tmp_path)
    (bindir / "packer").write_text(
        '#!/bin/sh\nif [ "$1" = validate ]; then\n'
        "  echo \"Error: unknown option 'hermetic_network'\" >&2; exit 1\nfi\n"
        f'touch "{tmp_path}/packer-built"\n'
    )
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    assert main(["build", "t.pkr.hcl"]) == 1
    err = capsys.readouterr().err
    assert "t.pkr.hcl:11: post-processor 'googlecompute-export' is not supported" in err
    assert "`packer validate` says: Error: unknown option 'hermetic_network'" in err
    assert not (tmp_path / "packer-built").exists()
    assert not (tmp_path / "output-a").exists()


@needs_packer
def test_real_packer_is_asked_whether_it_can_take_the_build(tmp_path: Path, capsys) -> None:
    text = FOREIGN.replace("googlecompute-export", "no-such-thing").replace(
        'paths = ["gs://bucket/x.tar.gz"]', ""
    )
    (tmp_path / "t.pkr.hcl").write_text(text)
    assert main(["validate", "t.pkr.hcl"]) == 1
    err = capsys.readouterr().err
    assert "t.pkr.hcl:11: post-processor 'no-such-thing' is not supported by packwrap" in err
    assert "`packer validate` says:" in err and "no-such-thing" in err.split("says:")[1]


def test_except_leaves_out_a_post_processor_and_the_rest_of_its_chain(
    tmp_path: Path, capsys
) -> None:
    (tmp_path / "t.pkr.hcl").write_text(CHAINS)
    rc = main(["build", "-color=false", "-parallel-builds=1", "-except=artifice", "t.pkr.hcl"])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    assert sorted((tmp_path / "ran.txt").read_text().splitlines()) == ["first a null",
                                                                       "single b"]  # fmt: skip
    assert not list(tmp_path.glob("*.sum"))  # checksum came after artifice: left out too
    assert "Running post-processor: artifice" not in out
    # a named post-processor is matched by its name
    named = CHAINS.replace('except = ["null.a"]', 'name   = "notify"\n    except = ["null.a"]')
    (tmp_path / "ran.txt").unlink()
    (tmp_path / "t.pkr.hcl").write_text(named)
    assert main(["build", "-color=false", "-except=notify", "t.pkr.hcl"]) == 0
    assert (tmp_path / "ran.txt").read_text().splitlines() == ["first a null"]
