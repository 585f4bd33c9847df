"""shell-local and artifice post-processors, and the chain semantics they bring: real
files, real /bin/sh."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from packwrap.build.artifact import Artifact
from packwrap.config.schema import ConfigError, SourceBody
from packwrap.errors import Cancelled, PackwrapError
from packwrap.postprocess import PPContext, prepare_chains, run_chains
from packwrap.postprocess.shell_local import ShellLocalPostProcessor
from packwrap.template.model import BlockSpec
from tests.state_support import RecordingUi


def ctx(tmp_path: Path) -> PPContext:
    return PPContext("openbsd-76", "qemu", "qemu.openbsd-76", "u-1", RecordingUi(), cwd=tmp_path)


@pytest.fixture
def artifact(tmp_path: Path) -> Artifact:
    out = tmp_path / "output"
    out.mkdir()
    (out / "disk.qcow2").write_bytes(b"disk" * 100)
    return Artifact(
        "transcend.qemu",
        "VM",
        [str(out / "disk.qcow2")],
        f"VM files in directory: {out}",
        state={"generated_data": {"SourceName": "openbsd-76"}},
    )


def chains(*specs: list[tuple[str, dict]]) -> list:
    return prepare_chains(
        [
            [
                BlockSpec(t, None, SourceBody(body, "t.pkr.hcl", 9, dict.fromkeys(body, 11)))
                for t, body in chain
            ]  # fmt: skip
            for chain in specs
        ]
    )


def problems(pp_type: str, body: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        chains([(pp_type, body)])
    return [str(p) for p in info.value.problems]


# --- shell-local -------------------------------------------------------------------------


def test_inline_runs_with_packers_environment_and_streams_output(tmp_path, artifact) -> None:
    c = ctx(tmp_path)
    inline = [
        'echo "name=$PACKER_BUILD_NAME type=$PACKER_BUILDER_TYPE greet=$GREET q=$QUOTE"',
        "echo second line",
        'echo "$0" > script-path',
        "pwd > where",
    ]
    body = {
        "inline": inline,
        "environment_vars": ["GREET=hello world", "QUOTE=it's"],
        "env": {"FROM_ENV": "yes"},
    }
    results = run_chains(chains([("shell-local", body)]), artifact, c)
    assert results == [artifact, artifact]  # kept, passed on unchanged
    ui = c.ui
    assert "    " not in ui.lines[0]
    assert "name=openbsd-76 type=qemu greet=hello world q=it's" in ui.lines
    assert "second line" in ui.lines
    assert (tmp_path / "where").read_text().strip() == str(tmp_path)
    script = Path((tmp_path / "script-path").read_text().strip())
    assert script.name.startswith("packer-shell")
    assert not script.exists()  # the temporary inline script is removed


def test_inline_shebang_default_stops_at_the_first_failure(tmp_path, artifact) -> None:
    body = {"inline": ["echo one", "false", "echo never"]}
    with pytest.raises(PackwrapError) as info:
        run_chains(chains([("shell-local", body)]), artifact, ctx(tmp_path))
    message = str(info.value)
    assert "exited with status 1 (allowed: 0); last output: one" in message
    assert "never" not in message


def test_valid_exit_codes_and_a_custom_shebang(tmp_path, artifact) -> None:
    body = {"inline": ["echo x", "exit 3"], "inline_shebang": "/bin/sh", "valid_exit_codes": [0, 3]}
    run_chains(chains([("shell-local", body)]), artifact, ctx(tmp_path))
    body["valid_exit_codes"] = [0]
    with pytest.raises(PackwrapError, match=r"status 3 \(allowed: 0\); last output: x"):
        run_chains(chains([("shell-local", body)]), artifact, ctx(tmp_path))


def test_scripts_run_in_order_through_execute_command(tmp_path, artifact) -> None:
    scripts = []
    for i in (1, 2):
        s = tmp_path / f"s{i}.sh"
        s.write_text(f'#!/bin/sh\necho "script {i} $PACKER_BUILDER_TYPE $V" >> {tmp_path}/log\n')
        s.chmod(0o755)
        scripts.append(str(s))
    run_chains(chains([("shell-local", {"scripts": scripts, "environment_vars": ["V=v"]})]),
               artifact, ctx(tmp_path))  # fmt: skip
    assert (tmp_path / "log").read_text() == "script 1 qemu v\nscript 2 qemu v\n"
    # execute_command is Packer's list; .Script is the absolute path, .Vars the variables
    command = ["/bin/sh", "-c", "echo vars: {{.Vars}} > out; sh {{.Script}}"]
    run_chains(chains([("shell-local", {"script": scripts[0], "execute_command": command})]),
               artifact, ctx(tmp_path))  # fmt: skip
    assert (tmp_path / "out").read_text() == (
        "vars: PACKER_BUILDER_TYPE=qemu PACKER_BUILD_NAME=openbsd-76\n"
    )


def test_a_script_that_is_not_executable_is_quoted(tmp_path, artifact) -> None:
    s = tmp_path / "plain.sh"
    s.write_text("echo hi\n")
    with pytest.raises(PackwrapError, match=r"status 126 .*Permission denied"):
        run_chains(chains([("shell-local", {"script": str(s)})]), artifact, ctx(tmp_path))


def test_only_on_skips_other_systems(tmp_path, artifact) -> None:
    c = ctx(tmp_path)
    body = {"inline": ["touch ran"], "only_on": ["openbsd" if os.uname().sysname == "Linux"
                                                   else "linux"]}  # fmt: skip
    run_chains(chains([("shell-local", body)]), artifact, c)
    assert "Skipping shell-local due to runtime OS" in c.ui.lines
    assert not (tmp_path / "ran").exists()


def test_shell_local_config_problems_name_file_line_and_type(tmp_path) -> None:
    assert problems("shell-local", {}) == [
        "t.pkr.hcl:9: shell-local: one of inline, script or scripts is required"
    ]
    got = problems("shell-local", {"inline": ["x"], "script": "a.sh"})
    assert got == [
        "t.pkr.hcl:11: shell-local: set only one of inline, script, scripts (got inline, script)",
        "t.pkr.hcl:11: shell-local: bad script 'a.sh': no such file",
    ]
    got = problems("shell-local", {"script": str(tmp_path / "missing.sh")})
    assert got == [f"t.pkr.hcl:11: shell-local: bad script '{tmp_path}/missing.sh': no such file"]
    got = problems("shell-local", {"inline": ["x"], "environment_vars": ["=v", "NOEQ"]})
    assert len(got) == 2 and "not in format 'key=value': '=v'" in got[0]
    got = problems("shell-local", {"inline": ["x"], "only_on": ["plan9"]})
    assert got[0].startswith("t.pkr.hcl:11: shell-local: invalid OS in only_on: 'plan9'")
    got = problems("shell-local", {"inline": 5, "valid_exit_codes": ["zero"], "env": ["A=b"]})
    assert got == [
        "t.pkr.hcl:11: option 'inline': expected list, got 5",
        "t.pkr.hcl:11: valid_exit_codes ['zero']: expected a list of integers (exit codes)",
        "t.pkr.hcl:11: env ['A=b']: expected a map of strings (NAME = value)",
    ]


def test_a_missing_command_is_quoted(tmp_path, artifact) -> None:
    body = {"inline": ["true"], "execute_command": ["/nonexistent/sh", "{{.Script}}"]}
    with pytest.raises(PackwrapError, match="cannot run /nonexistent/sh: No such file"):
        run_chains(chains([("shell-local", body)]), artifact, ctx(tmp_path))


def test_ctrl_c_ends_the_command_and_its_children(tmp_path, artifact) -> None:
    c = ctx(tmp_path)
    body = {"inline": [f"sleep 30 & echo $! > {tmp_path}/child", "wait"]}
    prepared = chains([("shell-local", body)])
    timer = threading.Timer(1.0, c.cancel_event.set)
    timer.start()
    start = time.monotonic()
    try:
        with pytest.raises(Cancelled):
            run_chains(prepared, artifact, c)
    finally:
        timer.cancel()
    assert time.monotonic() - start < 10
    child = int((tmp_path / "child").read_text())
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the command's child outlived the cancel")


def test_schema_lists_packers_options() -> None:
    names = set(ShellLocalPostProcessor.schema.options)
    assert {"inline", "script", "scripts", "environment_vars", "env", "execute_command",
            "inline_shebang", "only_on", "valid_exit_codes"} <= names  # fmt: skip


# --- artifice and keep_input_artifact ------------------------------------------------------


def test_artifice_replaces_the_files_and_keeps_the_input_by_default(tmp_path, artifact) -> None:
    monkey_cwd = tmp_path
    (monkey_cwd / "dist").mkdir()
    (monkey_cwd / "dist" / "a.tgz").write_bytes(b"a")
    (monkey_cwd / "dist" / "b.tgz").write_bytes(b"b")
    c = ctx(tmp_path)
    results = run_chains(chains([("artifice", {"files": ["dist/*.tgz"]})]), artifact, c)
    assert [a.builder_id for a in results] == ["transcend.qemu", "packer.post-processor.artifice"]
    assert results[1].files == ["dist/a.tgz", "dist/b.tgz"]
    assert results[1].state == {}
    assert f"Discarding files from artifact: {artifact.files[0]}" in c.ui.lines
    assert Path(artifact.files[0]).exists()


def test_artifice_keep_input_artifact_false_deletes_the_builders_files(tmp_path, artifact):
    (tmp_path / "x.tgz").write_bytes(b"x")
    c = ctx(tmp_path)
    body = {"files": ["x.tgz"], "keep_input_artifact": False}
    results = run_chains(chains([("artifice", body), ("checksum", {"output": "sums"})]),
                         artifact, c)  # fmt: skip
    assert [a.builder_id for a in results] == [
        "packer.post-processor.artifice",  # checksum keeps its input
        "packer.post-processor.checksum",
    ]
    assert not Path(artifact.files[0]).exists()
    assert not (tmp_path / "output").exists()  # the builder's directory, left empty
    assert (tmp_path / "x.tgz").exists()
    assert (tmp_path / "sums").read_text().endswith("\tx.tgz\n")


def test_a_second_chain_keeping_the_original_saves_it(tmp_path, artifact) -> None:
    (tmp_path / "x.tgz").write_bytes(b"x")
    body = {"files": ["x.tgz"], "keep_input_artifact": False}
    results = run_chains(chains([("artifice", body)], [("shell-local", {"inline": ["true"]})]),
                         artifact, ctx(tmp_path))  # fmt: skip
    assert results[0] is artifact
    assert Path(artifact.files[0]).exists()


def test_shell_local_forces_keep_input_artifact(tmp_path, artifact) -> None:
    body = {"inline": ["true"], "keep_input_artifact": False}
    results = run_chains(chains([("shell-local", body)]), artifact, ctx(tmp_path))
    assert results == [artifact, artifact]
    assert Path(artifact.files[0]).exists()


def test_artifice_problems(tmp_path, artifact) -> None:
    assert problems("artifice", {}) == ["t.pkr.hcl:9: missing required option 'files'"]
    assert problems("artifice", {"files": []}) == [
        't.pkr.hcl:11: artifice: no files specified (files = ["..."])'
    ]
    with pytest.raises(PackwrapError, match=r"artifice: no file matches 'nothing/\*'"):
        run_chains(chains([("artifice", {"files": ["nothing/*"]})]), artifact, ctx(tmp_path))


# --- checksum: every Packer type, the output template -------------------------------------


def test_checksum_every_type_and_the_output_template(tmp_path, artifact) -> None:
    import hashlib

    types = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]
    body = {"checksum_types": types, "output": "sums/{{.BuildName}}.{{.ChecksumType}}"}
    results = run_chains(chains([("checksum", body)]), artifact, ctx(tmp_path))
    data = Path(artifact.files[0]).read_bytes()
    for kind in types:
        text = (tmp_path / "sums" / f"openbsd-76.{kind}").read_text()
        assert text == f"{hashlib.new(kind, data).hexdigest()}\tdisk.qcow2\n"
    assert results[-1].files[1:] == [str(tmp_path / "sums" / f"openbsd-76.{k}") for k in types]
    got = problems("checksum", {"checksum_types": "sha3"})
    assert got[0].startswith("t.pkr.hcl:11: unrecognized checksum type 'sha3'")
    got = problems("checksum", {"checksum_types": {"a": 1}})
    assert got == ["t.pkr.hcl:11: option 'checksum_types': expected list, got {'a': 1}"]


def test_a_failing_chain_does_not_stop_the_others_and_nothing_is_deleted(
    tmp_path, artifact
) -> None:
    (tmp_path / "x.tgz").write_bytes(b"x")
    failing = [("artifice", {"files": ["x.tgz"], "keep_input_artifact": False}),
               ("shell-local", {"inline": ["echo broken", "exit 4"]})]  # fmt: skip
    other = [("shell-local", {"inline": ["touch other-ran"]})]
    with pytest.raises(PackwrapError, match="status 4 .*last output: broken"):
        run_chains(chains(failing, other), artifact, ctx(tmp_path))
    assert (tmp_path / "other-ran").exists()
    assert Path(artifact.files[0]).exists()
    two = [("shell-local", {"inline": ["exit 5"]})]
    with pytest.raises(PackwrapError, match="post-processors failed: .*status 4.*status 5"):
        run_chains(chains(failing, two), artifact, ctx(tmp_path))


def test_the_builders_http_address_reaches_the_variables(tmp_path, artifact) -> None:
    artifact.state["generated_data"] = {"PackerHTTPAddr": "10.0.2.2:8100", "PackerHTTPPort": 8100}
    body = {"inline": ["true"], "execute_command": ["/bin/sh", "-c", "echo {{.Vars}} > vars"]}
    run_chains(chains([("shell-local", body)]), artifact, ctx(tmp_path))
    assert (tmp_path / "vars").read_text() == (
        "PACKER_BUILDER_TYPE=qemu PACKER_BUILD_NAME=openbsd-76 "
        "PACKER_HTTP_ADDR=10.0.2.2:8100 PACKER_HTTP_PORT=8100\n"
    )


def test_an_unknown_template_field_is_a_problem_before_the_build(tmp_path) -> None:
    got = problems("shell-local", {"inline": ["x"], "execute_command": ["sh", "{{.Path}}"]})
    assert len(got) == 1
    assert got[0].startswith("t.pkr.hcl:11: shell-local execute_command: unknown template field "
                             ".Path (known: .Vars, .Script, .Command")  # fmt: skip


def test_checksum_output_with_an_unknown_field_is_a_problem_before_the_build() -> None:
    got = problems("checksum", {"output": "{{.BuildName}}_{{.Typ}}.sum"})
    assert got == ["t.pkr.hcl:11: checksum output: unknown template field .Typ "
                   "(known: .BuildName, .BuilderType, .ChecksumType)"]  # fmt: skip
