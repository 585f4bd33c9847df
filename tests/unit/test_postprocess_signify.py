"""The signify post-processor and `packwrap verify`, checked with the real signify-openbsd.

Keys are made at test time with `signify-openbsd -G` (with -n, and with a passphrase
read from stdin, which signify allows when stdin is not a terminal). Ed25519 is
deterministic, so our SHA256.sig must equal signify's own `-S -e` output byte for byte.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
from pathlib import Path

import pytest

from packwrap.build.artifact import Artifact
from packwrap.config.schema import ConfigError, SourceBody
from packwrap.errors import Cancelled, PackwrapError
from packwrap.postprocess import PPContext, prepare_chains, run_chains, unlock_chains
from packwrap.template.model import BlockSpec
from tests.mirror_support import SIGNIFY, Keys, make_keys
from tests.packwrap_runner import run_cli
from tests.state_support import RecordingUi

pytestmark = pytest.mark.skipif(SIGNIFY is None, reason="signify-openbsd not installed")

PASSPHRASE = "correct horse"
ENV = "PACKWRAP_SIGNIFY_PASSPHRASE"


@pytest.fixture(scope="module")
def open_key(tmp_path_factory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("open"), "builds")


@pytest.fixture(scope="module")
def locked_key(tmp_path_factory) -> Keys:
    d = tmp_path_factory.mktemp("locked")
    pub, sec = d / "release.pub", d / "release.sec"
    subprocess.run(
        [SIGNIFY, "-G", "-p", str(pub), "-s", str(sec), "-c", "release"],
        input=PASSPHRASE + "\n",
        text=True,
        check=True,
        capture_output=True,
    )
    return Keys(pub, sec)


@pytest.fixture
def artifact(tmp_path: Path) -> Artifact:
    out = tmp_path / "output-openbsd-76"
    out.mkdir()
    (out / "openbsd-76.qcow2").write_bytes(b"disk" * 100_000)
    (out / "efivars.fd").write_bytes(b"vars" * 10)
    return Artifact(
        "transcend.qemu",
        "VM",
        [str(out / "openbsd-76.qcow2"), "output-openbsd-76/efivars.fd"],
        f"VM files in directory: {out}",
    )


def ctx(tmp_path: Path, force: bool = False) -> PPContext:
    return PPContext(
        "openbsd-76", "qemu", "qemu.openbsd-76", "u-1", RecordingUi(), force=force, cwd=tmp_path
    )


def chains(body: dict) -> list:
    return prepare_chains([[BlockSpec("signify", None, SourceBody(body, "t.pkr.hcl", 7))]])


def signify_check(pub: Path, directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SIGNIFY, "-C", "-p", str(pub), "-x", "SHA256.sig"],
        cwd=directory,
        capture_output=True,
        text=True,
    )


def signify_check_file(pub: Path, sig: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SIGNIFY, "-C", "-p", str(pub), "-x", sig.name],
        cwd=sig.parent,
        capture_output=True,
        text=True,
    )


def test_open_key_signs_every_file_and_signify_verifies(tmp_path, artifact, open_key):
    results = run_chains(chains({"private_key_file": str(open_key.sec)}), artifact, ctx(tmp_path))
    out = tmp_path / "output-openbsd-76"
    listing = (out / "SHA256").read_text()
    assert listing == "".join(
        f"SHA256 ({n}) = {hashlib.sha256((out / n).read_bytes()).hexdigest()}\n"
        for n in ("efivars.fd", "openbsd-76.qcow2")
    )
    done = signify_check(open_key.pub, out)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Signature Verified",
        "efivars.fd: OK",
        "openbsd-76.qcow2: OK",
    ]
    # the signed artifact lists the inputs and both new files; the input is kept
    assert results[0] is artifact
    assert results[-1].files[-2:] == [str(out / "SHA256"), str(out / "SHA256.sig")]


def test_signature_is_byte_identical_to_signify_sign_embedded(tmp_path, artifact, open_key):
    run_chains(chains({"private_key_file": str(open_key.sec)}), artifact, ctx(tmp_path))
    out = tmp_path / "output-openbsd-76"
    ref = tmp_path / "ref.sig"
    subprocess.run(
        [SIGNIFY, "-S", "-e", "-s", str(open_key.sec), "-m", str(out / "SHA256"), "-x", str(ref)],
        check=True,
        capture_output=True,
    )
    ours = (out / "SHA256.sig").read_bytes()
    assert ours == ref.read_bytes()
    assert ours.startswith(b"untrusted comment: verify with builds.pub\n")


def test_passphrase_from_the_environment(tmp_path, artifact, locked_key):
    prepared = chains({"private_key_file": str(locked_key.sec)})
    unlock_chains(prepared, {ENV: PASSPHRASE})
    run_chains(prepared, artifact, ctx(tmp_path))
    assert signify_check(locked_key.pub, tmp_path / "output-openbsd-76").returncode == 0


def test_passphrase_variable_is_configurable_and_a_prompt_answers_when_unset(
    tmp_path, artifact, locked_key
):
    [[pp]] = chains({"private_key_file": str(locked_key.sec), "passphrase_env": "MY_PASS"})
    pp.impl.unlock(pp.config, {"MY_PASS": PASSPHRASE})
    asked: list[str] = []
    [[other]] = chains({"private_key_file": str(locked_key.sec)})
    other.impl.unlock(other.config, {}, prompt=lambda text: asked.append(text) or PASSPHRASE)
    assert asked == [f"passphrase for {locked_key.sec}: "]
    run_chains([[other]], artifact, ctx(tmp_path))
    assert signify_check(locked_key.pub, tmp_path / "output-openbsd-76").returncode == 0


def test_one_question_per_key_for_many_builds(locked_key):
    builds = [chains({"private_key_file": str(locked_key.sec)})[0] for _ in range(3)]
    asked: list[str] = []
    unlock_chains(builds, {}, prompt=lambda text: asked.append(text) or PASSPHRASE)
    assert asked == [f"passphrase for {locked_key.sec}: "]
    assert all(pp.impl._key is not None for [pp] in builds)


@pytest.mark.parametrize(
    ("env", "answer", "message"),
    [
        ({ENV: "Wr0ng-pass"}, None, "incorrect passphrase for signify key release.sec"),
        ({}, None, f"the signify key needs a passphrase: set {ENV} or run from a terminal"),
        ({}, "Wr0ng-pass", "incorrect passphrase"),
    ],
)
def test_wrong_or_missing_passphrase_is_one_line_and_writes_nothing(
    tmp_path, artifact, locked_key, env, answer, message
):
    prepared = chains({"private_key_file": str(locked_key.sec)})
    [[pp]] = prepared
    with pytest.raises(PackwrapError) as err:
        pp.impl.unlock(pp.config, env, prompt=lambda _text: answer)
    text = str(err.value)
    assert "\n" not in text and "Wr0ng-pass" not in text
    assert text.startswith(f"{locked_key.sec}: ") and message in text
    assert sorted(p.name for p in (tmp_path / "output-openbsd-76").iterdir()) == [
        "efivars.fd",
        "openbsd-76.qcow2",
    ]


def test_missing_or_bad_key_is_a_prepare_problem_at_the_template_line(tmp_path, open_key):
    with pytest.raises(ConfigError) as err:
        chains({"private_key_file": str(tmp_path / "nope.sec")})
    [problem] = err.value.problems
    assert str(problem).startswith("t.pkr.hcl:7: ")
    assert "nope.sec: cannot read signify secret key: No such file or directory" in str(problem)
    with pytest.raises(ConfigError) as err:
        chains({"private_key_file": str(open_key.pub)})  # a public key is not a secret key
    assert "not a signify Ed25519 secret key" in str(err.value.problems[0])
    with pytest.raises(ConfigError) as err:
        chains({})
    assert "missing required option 'private_key_file'" in str(err.value.problems[0])


def test_existing_output_needs_force_and_is_left_untouched(tmp_path, artifact, open_key):
    out = tmp_path / "output-openbsd-76"
    (out / "SHA256.sig").write_text("old signature\n")
    with pytest.raises(PackwrapError, match=r"SHA256.sig already exists \(use -force"):
        run_chains(chains({"private_key_file": str(open_key.sec)}), artifact, ctx(tmp_path))
    assert (out / "SHA256.sig").read_text() == "old signature\n"
    assert not (out / "SHA256").exists()
    run_chains(chains({"private_key_file": str(open_key.sec)}), artifact, ctx(tmp_path, True))
    assert signify_check(open_key.pub, out).returncode == 0


def test_output_directory_option_names_files_relative_to_it(tmp_path, artifact, open_key):
    body = {"private_key_file": str(open_key.sec), "output": "signed/{{.BuildName}}"}
    run_chains(chains(body), artifact, ctx(tmp_path))
    signed = tmp_path / "signed" / "openbsd-76"
    assert "SHA256 (../../output-openbsd-76/openbsd-76.qcow2) = " in (signed / "SHA256").read_text()
    assert signify_check(open_key.pub, signed).returncode == 0


def test_cancel_while_hashing_leaves_no_partial_signature(tmp_path, artifact, open_key):
    c = ctx(tmp_path)
    prepared = chains({"private_key_file": str(open_key.sec)})
    c.cancel_event = threading.Event()
    [[pp]] = prepared
    pp.impl.unlock(pp.config, {})
    c.cancel_event.set()
    with pytest.raises(Cancelled):
        pp.impl.run(pp.config, artifact, c)
    assert not (tmp_path / "output-openbsd-76" / "SHA256").exists()
    assert not (tmp_path / "output-openbsd-76" / "SHA256.sig").exists()


@pytest.mark.parametrize("name", ["my disk.raw", "disk(1).raw"])
def test_a_file_name_signify_cannot_read_back_is_refused(tmp_path, open_key, name):
    """signify.c rev 1.119 reads a name with sscanf %s (a blank ends it); the installed
    signify-openbsd fails on a ')' inside it, as checked here."""
    (tmp_path / name).write_bytes(b"x")
    if ")" in name:
        listing = tmp_path / "SHA256"
        listing.write_text(f"SHA256 ({name}) = {hashlib.sha256(b'x').hexdigest()}\n")
        ref = tmp_path / "ref.sig"
        sign = [SIGNIFY, "-S", "-e", "-s", str(open_key.sec), "-m", str(listing), "-x", str(ref)]
        subprocess.run(sign, check=True)
        assert "unable to parse checksum line" in signify_check_file(open_key.pub, ref).stderr
        listing.unlink()
    art = Artifact("x", "", [str(tmp_path / name)], "")
    with pytest.raises(PackwrapError, match=r"signify -C cannot read a name with a blank or '\)'"):
        run_chains(chains({"private_key_file": str(open_key.sec)}), art, ctx(tmp_path))
    assert not (tmp_path / "SHA256").exists()


# -- packwrap verify ------------------------------------------------------------------


@pytest.fixture
def signed_dir(tmp_path, artifact, open_key) -> Path:
    run_chains(chains({"private_key_file": str(open_key.sec)}), artifact, ctx(tmp_path))
    return tmp_path / "output-openbsd-76"


def test_verify_command_agrees_with_signify(signed_dir, open_key):
    done = run_cli("verify", str(signed_dir), "--key", str(open_key.pub))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Signature Verified",
        "efivars.fd: OK",
        "openbsd-76.qcow2: OK",
    ]
    # a changed file: both fail, naming it
    (signed_dir / "efivars.fd").write_bytes(b"changed")
    assert signify_check(open_key.pub, signed_dir).returncode == 1
    done = run_cli("verify", str(signed_dir), "--key", str(open_key.pub))
    assert done.returncode == 1
    assert "efivars.fd: FAIL" in done.stderr
    assert done.stderr.strip().splitlines()[-1] == "Error: 1 of 2 files failed verification"


def test_verify_command_refuses_a_wrong_key_or_an_altered_list(signed_dir, locked_key, open_key):
    done = run_cli("verify", str(signed_dir), "--key", str(locked_key.pub))
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: {signed_dir / 'SHA256.sig'}: verification failed: ")
    assert len(done.stderr.strip().splitlines()) == 1
    sig = signed_dir / "SHA256.sig"
    sig.write_bytes(sig.read_bytes().replace(b"SHA256 (efivars.fd)", b"SHA256 (efivars.fe)"))
    assert signify_check(open_key.pub, signed_dir).returncode == 1
    done = run_cli("verify", str(signed_dir), "--key", str(open_key.pub))
    assert done.returncode == 1
    assert "signature verification failed" in done.stderr


def test_verify_command_without_a_signature_is_one_line(tmp_path, open_key):
    done = run_cli("verify", str(tmp_path), "--key", str(open_key.pub))
    assert done.returncode == 1
    assert (
        done.stderr == f"Error: cannot read {tmp_path / 'SHA256.sig'}: No such file or directory\n"
    )


# -- through `packwrap build` (a stand-in builder: the unit seam is plugins.builder_for) --


class _StepDisk:
    name = "disk"

    def applies(self, state) -> bool:
        return True

    def run(self, state) -> None:
        out = Path(state.config.out)
        out.mkdir()
        (out / "disk.raw").write_bytes(b"installed" * 1000)
        state.ui.say("disk written")

    def cleanup(self, state) -> None:
        pass


class _DiskBuilder:
    from packwrap.config.schema import Option, Schema

    type_name = "disk"
    schema = Schema([Option("out", "string", "output-disk")])

    def steps(self, config):
        return [_StepDisk()]

    def artifact(self, config, state):
        disk = Path(config.out) / "disk.raw"
        return Artifact("packwrap.disk", "DISK", [str(disk)], f"VM files in directory: {disk}")


@pytest.fixture
def disk_builder(monkeypatch, tmp_path):
    from packwrap import plugins

    monkeypatch.setattr(plugins, "builder_for", lambda t: _DiskBuilder if t == "disk" else None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PACKWRAP_LOG_DIR", str(tmp_path / "logs"))


def _template(tmp_path: Path, key: Path) -> None:
    (tmp_path / "t.pkr.hcl").write_text(
        'source "disk" "a" {}\n'
        'build {\n  sources = ["source.disk.a"]\n'
        f'  post-processor "signify" {{\n    private_key_file = "{key}"\n  }}\n}}\n'
    )


def test_build_unlocks_the_key_before_it_starts(
    tmp_path, disk_builder, locked_key, monkeypatch, capsys
):
    from packwrap.cli import main

    _template(tmp_path, locked_key.sec)
    monkeypatch.setenv(ENV, "wrong")
    assert main(["build", "t.pkr.hcl"]) == 1
    out, err = capsys.readouterr()
    assert err == f"Error: {locked_key.sec}: incorrect passphrase for signify key release.sec\n"
    assert "disk written" not in out  # failed before the build, not after it
    assert not (tmp_path / "output-disk").exists()

    monkeypatch.setenv(ENV, PASSPHRASE)
    assert main(["build", "t.pkr.hcl"]) == 0, capsys.readouterr().err
    done = signify_check(locked_key.pub, tmp_path / "output-disk")
    assert done.stdout.splitlines() == ["Signature Verified", "disk.raw: OK"]


def test_terminal_prompt_reads_without_echo_from_a_terminal(tmp_path):
    """The real prompt on a pseudo-terminal reads the answer; without one it gives None."""
    import os
    import sys

    primary, secondary = os.openpty()
    code = "from packwrap.postprocess.signify import terminal_prompt as t; print(repr(t('pw: ')))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # no controlling terminal: getpass uses the pty on stdin
        text=True,
    )
    os.close(secondary)
    try:
        assert proc.stderr is not None
        assert proc.stderr.read(4) == "pw: "  # typed earlier, getpass would flush it
        os.write(primary, f"{PASSPHRASE}\n".encode())
        out, _err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    assert out.strip() == repr(PASSPHRASE)
    # without a terminal nobody can answer: None, and the caller says how to set it
    done = subprocess.run(
        [sys.executable, "-c", code], stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    assert done.stdout.strip() == "None"
