"""`packwrap build`: flags, embedded builds with a stand-in builder, post-processors,
machine-readable output, cancellation, logs, and the hand-off to packer."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest

from packwrap import plugins
from packwrap.build.artifact import Artifact
from packwrap.build.state import State
from packwrap.build.step import Step
from packwrap.cli import main
from packwrap.config.schema import BOOL, DURATION, STRING, Option, Schema
from packwrap.errors import PackwrapError

EVENTS: list[str] = []
RUNNING = {"now": 0, "max": 0}
LOCK = threading.Lock()


class StepWork(Step):
    name = "work"

    def run(self, state: State) -> None:
        cfg = state.config
        EVENTS.append(f"run {state.build_name}")
        with LOCK:
            RUNNING["now"] += 1
            RUNNING["max"] = max(RUNNING["max"], RUNNING["now"])
        try:
            state.ui.say(f"Working with {cfg.msg}...")
            state.data["cleanup_hints"] = [f"rm -r {cfg.out}"]
            if cfg.interrupt:
                os.kill(os.getpid(), signal.SIGINT)
            state.sleep(cfg.work)
            if cfg.fail:
                raise PackwrapError("the guest said no")
            out = Path(cfg.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / "disk.raw").write_bytes(b"x" * 10)
        finally:
            with LOCK:
                RUNNING["now"] -= 1

    def cleanup(self, state: State) -> None:
        EVENTS.append(f"cleanup {state.build_name}")


class FakeBuilder:
    type_name: ClassVar[str] = "fake"
    schema: ClassVar[Schema] = Schema(
        [
            Option("msg", STRING, "hello"),
            Option("out", STRING, "out"),
            Option("fail", BOOL, False),
            Option("interrupt", BOOL, False),
            Option("work", DURATION, 0.0),
        ]
    )

    def steps(self, config):
        return [StepWork()]

    def artifact(self, config, state):
        out = Path(config.out)
        return Artifact(
            "packwrap.fake", "FAKE", [str(out / "disk.raw")], f"VM files in directory: {out}"
        )


@pytest.fixture(autouse=True)
def fake_builder(monkeypatch, tmp_path: Path):
    real = plugins.builder_for
    monkeypatch.setattr(
        plugins,
        "builder_for",
        lambda t: FakeBuilder if t == "fake" else (None if t != "qemu" else real(t)),
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PACKWRAP_LOG_DIR", str(tmp_path / "logs"))
    EVENTS.clear()
    RUNNING.update(now=0, max=0)


def write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "t.pkr.hcl"
    p.write_text(body)
    return p


TEMPLATE = """
variable "pw" {
  type      = string
  default   = "s3cret-pw"
  sensitive = true
}

source "fake" "a" {
  msg = "pw ${var.pw}"
  out = "out-a"
}

source "fake" "b" {
  out  = "out-b"
  work = "0.3s"
}

build {
  sources = ["source.fake.a", "source.fake.b"]

  post-processor "manifest" {}
  post-processor "checksum" {
    checksum_types = ["sha256"]
  }
}
"""


def test_build_two_embedded_builds_in_parallel(tmp_path: Path, capsys) -> None:
    write(tmp_path, TEMPLATE.replace('out = "out-a"', 'out = "out-a"\n  work = "0.5s"'))
    rc = main(["build", "-parallel-builds=2", "t.pkr.hcl"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert RUNNING["max"] == 2
    assert "==> fake.a: Working with pw <sensitive>..." in out
    assert "s3cret-pw" not in out + err
    assert "==> Builds finished. The artifacts of successful builds are:" in out
    assert "--> fake.a: VM files in directory: out-a" in out
    # manifest passes the builder's artifact on: named once (Packer names it twice)
    assert out.count("--> fake.a: VM files in directory: out-a") == 1
    assert "Running post-processor: manifest\n" in out
    manifest = json.loads((tmp_path / "packer-manifest.json").read_text())
    assert sorted(b["name"] for b in manifest["builds"]) == ["a", "b"]
    assert manifest["builds"][0]["packer_run_uuid"] == manifest["last_run_uuid"]
    sums = (tmp_path / "packer_a_fake_sha256.checksum").read_text()
    assert sums.endswith("\tdisk.raw\n")
    log = (tmp_path / "logs" / "packwrap-fake.a.log").read_text()
    assert "Working with pw <sensitive>" in log
    assert "s3cret-pw" not in log
    assert log[:4].isdigit() and "T" in log.split()[0]  # timestamped lines
    assert "step 'work': done in" in log


def test_parallel_builds_1_is_sequential(tmp_path: Path, capsys) -> None:
    write(tmp_path, TEMPLATE)
    assert main(["build", "--parallel-builds", "1", "t.pkr.hcl"]) == 0
    assert RUNNING["max"] == 1


def test_only_and_except(tmp_path: Path, capsys) -> None:
    write(tmp_path, TEMPLATE)
    assert main(["build", "-only=fake.b", str(tmp_path)]) == 0
    assert EVENTS == ["run fake.b", "cleanup fake.b"]
    EVENTS.clear()
    assert main(["build", "--except", "fake.b", "t.pkr.hcl"]) == 0
    assert EVENTS == ["run fake.a", "cleanup fake.a"]


def test_machine_readable(tmp_path: Path, capsys) -> None:
    write(tmp_path, TEMPLATE)
    assert main(["build", "-machine-readable", "-only=fake.a", "t.pkr.hcl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for line in lines:
        ts, target, kind, *_ = line.split(",")
        assert ts.isdigit()
    assert any(",,ui,say,==> fake.a: Working with pw <sensitive>..." in ln for ln in lines)
    art = [ln.split(",", 1)[1] for ln in lines if ",artifact" in ln]
    assert art[0] == "fake.a,artifact-count,3"
    assert art[1:6] == [
        "fake.a,artifact,0,builder-id,packwrap.fake",
        "fake.a,artifact,0,id,FAKE",
        "fake.a,artifact,0,string,VM files in directory: out-a",
        "fake.a,artifact,0,files-count,1",
        "fake.a,artifact,0,file,0,out-a/disk.raw",
    ]
    assert art[6] == "fake.a,artifact,0,end"
    assert any(
        "artifact,2,string,Created artifact from files: out-a/disk.raw%!(PACKER_COMMA) " in ln
        for ln in art
    )


def test_timestamp_ui(tmp_path: Path, capsys) -> None:
    write(tmp_path, TEMPLATE)
    assert main(["build", "-timestamp-ui", "-only=fake.a", "-color=false", "t.pkr.hcl"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "Working with" in ln)
    assert line[:20].endswith("Z") and line[4] == "-" and line[10] == "T"
    assert line[20:].startswith(": ==> fake.a:")
    assert "\x1b[" not in out


def test_failed_build_exit_1_and_error_lines(tmp_path: Path, capsys) -> None:
    write(tmp_path, TEMPLATE.replace('out = "out-a"', 'out = "out-a"\n  fail = true'))
    rc = main(["build", "t.pkr.hcl"])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "Build 'fake.a' errored after" in err
    assert "the guest said no" in err
    assert "build log:" in err
    assert "--> fake.a: the guest said no" in out
    assert "--> fake.b: VM files in directory: out-b" in out  # the other build still ran
    assert "cleanup fake.a" in EVENTS


def test_on_error_abort_skips_cleanup_and_prints_hints(tmp_path: Path, capsys) -> None:
    write(tmp_path, TEMPLATE.replace('out = "out-a"', 'out = "out-a"\n  fail = true'))
    rc = main(["build", "-on-error=abort", "-only=fake.a", "t.pkr.hcl"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "cleanup fake.a" not in EVENTS
    assert "rm -r out-a" in err


def test_sigint_cancels_with_cleanup_and_exit_130(tmp_path: Path, capsys) -> None:
    write(
        tmp_path,
        TEMPLATE.replace('out = "out-a"', 'out = "out-a"\n  interrupt = true\n  work = "30s"'),
    )
    before = signal.getsignal(signal.SIGINT)
    t0 = time.monotonic()
    rc = main(["build", "-only=fake.a", "t.pkr.hcl"])
    err = capsys.readouterr().err
    assert rc == 130
    assert time.monotonic() - t0 < 5
    assert EVENTS == ["run fake.a", "cleanup fake.a"]
    assert "SIGINT received" in err
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored
    log = (tmp_path / "logs" / "packwrap-fake.a.log").read_text()
    assert "interrupted during step 'work'" in log


def test_config_problems_all_listed(tmp_path: Path, capsys) -> None:
    write(tmp_path, TEMPLATE.replace('msg = "pw ${var.pw}"', 'mesg = 1\n  fail = "maybe"'))
    rc = main(["build", "t.pkr.hcl"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "unknown option 'mesg'; did you mean 'msg'?" in err
    assert "t.pkr.hcl:" in err and "'fail'" in err
    assert EVENTS == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-on-error=explode"], "-on-error=explode"),
        (["-parallel-builds=x"], "-parallel-builds=x"),
        (["-frobnicate"], "unknown flag"),
    ],
)
def test_bad_flags_are_usage_errors(tmp_path: Path, capsys, argv, message) -> None:
    write(tmp_path, TEMPLATE)
    assert main(["build", *argv, "t.pkr.hcl"]) == 2
    assert message in capsys.readouterr().err


# --- hand-off to packer ------------------------------------------------------------------

HANDOFF = """
variable "v" {
  type    = string
  default = "x"
}

source "fake" "a" {
  out = "out-a"
}

source "null" "n" {
  communicator = "none"
}

build {
  sources = ["source.fake.a", "source.null.n"]
}
"""


def fake_packer(tmp_path: Path, rc: int = 0) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "packer"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{tmp_path}/packer-argv"\n'
        'echo "==> null.n: fake packer ran"\n'
        f"exit {rc}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bindir


def test_handoff_passes_flags_and_only(tmp_path: Path, capsys, monkeypatch) -> None:
    write(tmp_path, HANDOFF)
    (tmp_path / "v.pkrvars.hcl").write_text('v = "y"\n')
    monkeypatch.setenv("PATH", f"{fake_packer(tmp_path)}:{os.environ['PATH']}")
    rc = main(
        [
            "build",
            "-var",
            "v=z",
            "-var-file=v.pkrvars.hcl",
            "-force",
            "-on-error=abort",
            "-timestamp-ui",
            "-color=false",
            "t.pkr.hcl",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    argv = (tmp_path / "packer-argv").read_text().splitlines()
    assert argv == [
        "build",
        "-var",
        "v=z",
        "-var-file=v.pkrvars.hcl",
        "-force",
        "-on-error=abort",
        "-timestamp-ui",
        "-color=false",
        "-only=null.n",
        "t.pkr.hcl",
    ]
    assert "==> null.n: fake packer ran" in out
    assert EVENTS == ["run fake.a", "cleanup fake.a"]  # the embedded build ran too


def test_handoff_failure_fails_the_run(tmp_path: Path, capsys, monkeypatch) -> None:
    write(tmp_path, HANDOFF)
    monkeypatch.setenv("PATH", f"{fake_packer(tmp_path, rc=1)}:{os.environ['PATH']}")
    assert main(["build", "t.pkr.hcl"]) == 1
    assert "packer build exited with status 1" in capsys.readouterr().out


def test_handoff_without_packer_is_one_clear_line(tmp_path: Path, capsys, monkeypatch) -> None:
    write(tmp_path, HANDOFF)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert main(["build", "t.pkr.hcl"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("Error: no packwrap builder for source type 'null' (build null.n)")
    assert "no `packer` on PATH" in err[0]
    assert EVENTS == []  # nothing started


@pytest.mark.skipif(shutil.which("packer") is None, reason="packer not installed")
def test_handoff_to_real_packer_null_builder(tmp_path: Path, capsys) -> None:
    write(
        tmp_path,
        """
source "null" "x" {
  communicator = "none"
}

build {
  sources = ["source.null.x"]

  post-processor "manifest" {}
}
""",
    )
    rc = main(["build", "-color=false", "t.pkr.hcl"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "Build 'null.x' finished" in out
    manifest = json.loads((tmp_path / "packer-manifest.json").read_text())
    assert manifest["builds"][0]["name"] == "x"
    assert manifest["builds"][0]["builder_type"] == "null"


def test_sigquit_prints_the_console_tail_of_running_builds(tmp_path: Path) -> None:
    import io

    from packwrap.build.session import BuildSession
    from packwrap.build.state import State
    from packwrap.config import Config
    from packwrap.template.cliargs import parse_packer_flags

    class FakeConsole:
        def tail(self, n: int) -> list[str]:
            return ["Welcome to the OpenBSD/amd64 7.6 installation program.", "(I)nstall?"][-n:]

    out = io.StringIO()
    session = BuildSession(
        parse_packer_flags([], command="build"), out=out, err=out, install_signals=False
    )
    state = State("qemu.a", "qemu", "a", Config(), None)
    state.data["console"] = FakeConsole()
    session.running["qemu.a"] = state
    session.running["qemu.b"] = State("qemu.b", "qemu", "b", Config(), None)
    session.print_console_tails()
    assert out.getvalue().splitlines() == [
        "==> qemu.a: last console lines:",
        "    qemu.a console: Welcome to the OpenBSD/amd64 7.6 installation program.",
        "    qemu.a console: (I)nstall?",
        "    qemu.b: no serial console yet",
    ]


def test_sigint_is_forwarded_to_packer(tmp_path: Path, capsys, monkeypatch) -> None:
    write(tmp_path, HANDOFF)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "packer"
    script.write_text(
        "#!/bin/sh\n"
        f"trap 'echo interrupted > \"{tmp_path}/packer-got-int\"; exit 1' INT\n"
        "echo started\n"
        "sleep 20 &\n"
        "wait\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.monotonic()
    try:
        rc = main(["build", "-only=null.n", "t.pkr.hcl"])
    finally:
        timer.cancel()
    assert rc == 130
    assert time.monotonic() - t0 < 10
    assert (tmp_path / "packer-got-int").read_text() == "interrupted\n"


def test_console_tail_shown_when_a_step_fails(tmp_path: Path, capsys, monkeypatch) -> None:
    class Console:
        def tail(self, n: int) -> list[str]:
            return ["Question has no answer in response file: root password", "(I)nstall?"]

    class Failing(StepWork):
        def run(self, state: State) -> None:
            state.data["console"] = Console()
            del state.data["console"]  # a console step's cleanup removed it
            raise PackwrapError("the installer failed")

    monkeypatch.setattr(FakeBuilder, "steps", lambda self, config: [Failing()])
    write(tmp_path, TEMPLATE)
    assert main(["build", "-only=fake.a", "t.pkr.hcl"]) == 1
    err = capsys.readouterr().err.splitlines()
    first = next(i for i, ln in enumerate(err) if "errored after" in ln)
    assert err[first].endswith(": the installer failed")
    assert err[first + 1] == "    console: Question has no answer in response file: root password"
    assert err[first + 2] == "    console: (I)nstall?"


def test_plugin_import_error_is_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    def broken(type_name: str):
        raise ImportError("No module named 'packwrap_fake.builder'")

    monkeypatch.setattr(plugins, "builder_for", broken)
    write(tmp_path, TEMPLATE)
    assert main(["build", "t.pkr.hcl"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "t.pkr.hcl:8: the 'fake' builder plugin failed to load: No module named" in err[0]


def test_debug_runs_builds_one_at_a_time(tmp_path: Path, capsys) -> None:
    write(tmp_path, TEMPLATE.replace('out = "out-a"', 'out = "out-a"\n  work = "0.3s"'))
    assert main(["build", "-debug", "t.pkr.hcl"]) == 0  # stdin is no terminal: no pauses
    assert RUNNING["max"] == 1
    assert capsys.readouterr().out.count("Pausing before run of work") == 2


def test_config_problems_mask_secrets(tmp_path: Path, capsys) -> None:
    write(tmp_path, TEMPLATE.replace('msg = "pw ${var.pw}"', "work = var.pw"))
    assert main(["build", "t.pkr.hcl"]) == 1
    err = capsys.readouterr().err
    assert "<sensitive>" in err
    assert "s3cret-pw" not in err


def test_sigquit_during_a_build(tmp_path: Path, capsys, monkeypatch) -> None:
    class Console:
        def tail(self, n: int) -> list[str]:
            return ["boot>"]

    class Quit(StepWork):
        def run(self, state: State) -> None:
            state.data["console"] = Console()
            os.kill(os.getpid(), signal.SIGQUIT)
            state.sleep(0.3)
            super().run(state)

    monkeypatch.setattr(FakeBuilder, "steps", lambda self, config: [Quit()])
    write(tmp_path, TEMPLATE)
    before = signal.getsignal(signal.SIGQUIT)
    assert main(["build", "-only=fake.a", "t.pkr.hcl"]) == 0
    out = capsys.readouterr().out
    assert "==> fake.a: last console lines:\n    fake.a console: boot>\n" in out
    assert signal.getsignal(signal.SIGQUIT) is before


def test_post_processor_failure_fails_the_build_without_console_tail(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    class Console:
        def tail(self, n: int) -> list[str]:
            return ["CONGRATULATIONS!"]

    class WithConsole(StepWork):
        def run(self, state: State) -> None:
            state.data["console"] = Console()  # the build succeeded; no disk file written

    monkeypatch.setattr(FakeBuilder, "steps", lambda self, config: [WithConsole()])
    write(tmp_path, TEMPLATE)
    assert main(["build", "-only=fake.a", "t.pkr.hcl"]) == 1
    err = capsys.readouterr().err
    assert "errored after" in err and "checksum: cannot read out-a/disk.raw" in err
    assert "CONGRATULATIONS" not in err
