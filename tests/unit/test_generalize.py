"""syspatch, build_record and generalize (packwrap/provision/generalize.py, buildrecord.py):
the exit-status rules, the command sequence and what it leaves, the record and its copy in
the manifest, the options' checks, and the steps' place in both builders."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from packwrap.build.artifact import Artifact
from packwrap.config.schema import SourceBody
from packwrap.errors import PackwrapError
from packwrap.postprocess import PPContext, prepare_chains, run_chains
from packwrap.provision import generalize as gz
from packwrap.provision.buildrecord import StepBuildRecord, build_record, record_text
from packwrap.template.model import BlockSpec
from tests.state_support import RecordingUi, make_state


class FakeComm:
    """Answers each command with the next scripted (status, output lines)."""

    def __init__(self, answers: dict[str, list[tuple[int, list[str]]]] | None = None):
        self.answers = answers or {}
        self.commands: list[str] = []
        self.uploads: dict[str, str] = {}

    def run(self, command, *, on_output=None, cancel=None) -> int:
        self.commands.append(command)
        for key, script in self.answers.items():
            if key in command and script:
                status, lines = script.pop(0)
                for line in lines:
                    if on_output:
                        on_output(line)
                return status
        return 0

    def upload(self, local: Path, remote: str) -> None:
        self.uploads[remote] = Path(local).read_text()

    def close(self) -> None:
        pass


def state_with(comm: FakeComm, tmp_path: Path, **config):
    state = make_state({"communicator": "ssh", **config}, template_dir=tmp_path)
    state.data["communicator"] = comm
    return state


def test_syspatch_runs_until_nothing_is_left(tmp_path):
    comm = FakeComm(
        {
            gz.SYSPATCH: [
                (2, ["Installing patch 001_syspatch", "syspatch: updated itself, run it again"]),
                (0, ["Installing patch 002_fake", "Installing patch 003_fake"]),
                (2, []),
            ]
        }
    )
    state = state_with(comm, tmp_path, syspatch=True)
    gz.StepSyspatch().run(state)
    assert [c for c in comm.commands if c == gz.SYSPATCH] == [gz.SYSPATCH] * 3
    assert "pgrep -xf '/bin/ksh .*reorder_kernel'" in comm.commands[0]  # the wait comes first
    text = state.ui.text
    assert "syspatch: run 3" in text and "nothing more to apply (after 3 runs)" in text
    assert "Installing patch 002_fake" in text  # the guest's output is in the log


def test_syspatch_failure_is_quoted(tmp_path):
    comm = FakeComm({gz.SYSPATCH: [(1, ["syspatch: Unsupported release: 7.6-current"])]})
    with pytest.raises(PackwrapError, match=r"syspatch exited with status 1; .*Unsupported"):
        gz.StepSyspatch().run(state_with(comm, tmp_path, syspatch=True))


def test_syspatch_that_never_settles_stops(tmp_path):
    comm = FakeComm({gz.SYSPATCH: [(0, ["Installing patch"])] * 20})
    with pytest.raises(PackwrapError, match="after 8 runs"):
        gz.StepSyspatch().run(state_with(comm, tmp_path, syspatch=True))


def test_a_relink_that_never_ends_fails_with_its_message(tmp_path):
    comm = FakeComm({"reorder_kernel": [(1, ["reorder_kernel still running after 1800s"])]})
    with pytest.raises(PackwrapError, match="still running after 1800s"):
        gz.StepGeneralize().run(state_with(comm, tmp_path, generalize=True))


def test_steps_do_nothing_unless_asked(tmp_path):
    comm = FakeComm()
    state = state_with(comm, tmp_path)
    for step in gz.final_guest_steps():
        if step.applies(state):  # the runner's rule
            step.run(state)
    assert comm.commands == [] and comm.uploads == {}


def test_generalize_runs_each_piece_named_then_zero_fills(tmp_path):
    comm = FakeComm()
    state = state_with(comm, tmp_path, generalize=True)
    state.data["ssh_public_key"] = "ssh-ed25519 AAAAC3NzaTEMPORARY packwrap-qemu.t"
    gz.StepGeneralize().run(state)
    said = [t for k, t in state.ui.events if k == "say" and t.startswith("Generalize: ")]
    assert said == [
        "Generalize: removing the SSH host keys",
        "Generalize: removing the random seeds",
        "Generalize: removing the seeds rc writes at shutdown too",
        "Generalize: removing the DHCP leases",
        "Generalize: removing shell histories",
        "Generalize: removing lladdr lines from /etc/hostname.*",
        "Generalize: removing the build's temporary SSH key",
        "Generalize: zero-filling free space",
    ]
    assert "AAAAC3NzaTEMPORARY" in comm.commands[-2]
    assert "dd if=/dev/zero" in comm.commands[-1]


def test_a_failing_piece_fails_the_build_with_its_output(tmp_path):
    comm = FakeComm({"random.seed": [(1, ["rm: /etc/random.seed: Read-only file system"])]})
    with pytest.raises(PackwrapError, match=r"generalize \(removing the random seeds\).*Read-only"):
        gz.StepGeneralize().run(state_with(comm, tmp_path, generalize=True))


def _in_root(command: str, root: Path) -> str:
    for top in ("/etc/", "/var/", "/root/", "/home/"):
        command = command.replace(top, f"{root}{top}")
    return command


def test_the_generalize_shell_leaves_none_of_the_files(tmp_path):
    """The real commands (but the zero fill) in sh, on a tree under tmp_path."""
    root = tmp_path / "guest"
    files = {
        "etc/ssh/ssh_host_ed25519_key": "k",
        "etc/ssh/ssh_host_ed25519_key.pub": "k",
        "etc/ssh/sshd_config": "PermitRootLogin prohibit-password\n",
        "etc/random.seed": "r",
        "var/db/host.random": "r",
        "var/db/dhcpleased/vio0": "version: 2\n",
        "root/.ksh_history": "ls\n",
        "home/puffy/.sh_history": "ls\n",
        "home/puffy/.profile": "PS1=$\n",
        "etc/hostname.vio0": "lladdr 52:54:00:12:34:56\ninet autoconf\n",
        "etc/hostname.vio1": "  lladdr fe:e1:ba:d0:00:01\n",
        "root/.ssh/authorized_keys": "ssh-ed25519 AAAAmine me@host\nssh-ed25519 AAAAtemp pw\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "etc/hostname.vio0").chmod(0o640)
    for cmd in gz.generalize_commands("AAAAtemp")[:-1]:
        done = subprocess.run(["sh", "-c", _in_root(cmd.command, root)], capture_output=True)
        assert done.returncode == 0, (cmd.label, done.stderr)
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert left == [
        "etc/hostname.vio0",
        "etc/hostname.vio1",
        "etc/rc.shutdown",  # the one-shot seed hook (it goes at the shutdown)
        "etc/ssh/sshd_config",
        "home/puffy/.profile",
        "root/.ssh/authorized_keys",
    ]
    assert (root / "etc/hostname.vio0").read_text() == "inet autoconf\n"
    assert (root / "etc/hostname.vio0").stat().st_mode & 0o777 == 0o640  # rewritten in place
    assert (root / "etc/hostname.vio1").read_text() == ""
    assert (root / "root/.ssh/authorized_keys").read_text() == "ssh-ed25519 AAAAmine me@host\n"


def _rc_shutdown(root: Path) -> None:
    """What OpenBSD's `/etc/rc shutdown` does that matters here (etc/rc 1.590): store_random
    writes fresh seeds, then (multi-user) `sh /etc/rc.shutdown`."""
    (root / "etc/random.seed").write_bytes(b"s" * 512)
    (root / "var/db/host.random").write_bytes(b"h" * 4096)
    if (root / "etc/rc.shutdown").exists():
        subprocess.run(["sh", "etc/rc.shutdown"], cwd=root, check=True,
                       env={"PATH": "/bin:/usr/bin"},
                       input=b"")  # fmt: skip


USER_RC_SHUTDOWN = "powerdown=NO\necho user hook ran > /tmp/x\nexit 0\n"


@pytest.mark.parametrize("user_lines", [None, USER_RC_SHUTDOWN])
def test_the_seed_hook_removes_what_rc_writes_at_shutdown_then_goes(tmp_path, user_lines):
    """The hook runs after store_random, even before a user rc.shutdown that exits, and
    leaves rc.shutdown as it found it: the next shutdown (a clone's) keeps its seeds."""
    root = tmp_path / "guest"
    (root / "etc").mkdir(parents=True)
    (root / "var/db").mkdir(parents=True)
    if user_lines is not None:
        (root / "etc/rc.shutdown").write_text(user_lines.replace("/tmp/x", f"{root}/x"))
        (root / "etc/rc.shutdown").chmod(0o644)
    hook = _in_root(gz.seed_hook_command(), root)
    done = subprocess.run(["sh", "-c", hook], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    again = subprocess.run(["sh", "-c", hook], capture_output=True, text=True)
    assert again.returncode == 0 and "already in place" in again.stdout
    _rc_shutdown(root)
    assert not (root / "etc/random.seed").exists()
    assert not (root / "var/db/host.random").exists()
    if user_lines is None:
        assert not (root / "etc/rc.shutdown").exists()
    else:
        assert (root / "etc/rc.shutdown").read_text() == user_lines.replace("/tmp/x", f"{root}/x")
        assert (root / "etc/rc.shutdown").stat().st_mode & 0o777 == 0o644
        assert (root / "x").read_text() == "user hook ran\n"  # the user's lines still ran
    assert sorted(p.name for p in (root / "etc").iterdir()) == (
        [] if user_lines is None else ["rc.shutdown"]
    )
    _rc_shutdown(root)  # a clone's shutdown: seeds stay
    assert (root / "etc/random.seed").exists() and (root / "var/db/host.random").exists()


def test_the_zero_fill_command_fills_then_removes(tmp_path):
    """With no ffs in `mount`, the root file system; its file goes even if dd fails."""
    cmd = gz.generalize_commands(None)[-1].command
    assert cmd.count("rm -f") == 2 and "trap " in cmd
    # on a tree of its own: `/` replaced by a small directory, dd limited by count
    fake = cmd.replace("mps=/", f"mps={tmp_path}").replace("bs=1048576", "bs=1024 count=4")
    done = subprocess.run(["sh", "-c", fake], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"zero-filled the free space of {tmp_path}" in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_the_relink_wait_matches_what_syspatch_tests():
    assert "pgrep -xf '/bin/ksh .*reorder_kernel'" in gz.relink_wait_command()
    done = subprocess.run(["sh", "-c", gz.relink_wait_command()], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == ""  # nothing relinks here


def test_the_relink_wait_runs_once_per_build(tmp_path):
    comm = FakeComm({gz.SYSPATCH: [(2, [])]})
    state = state_with(comm, tmp_path, syspatch=True, generalize=True)
    gz.StepSyspatch().run(state)
    gz.StepGeneralize().run(state)
    assert sum("reorder_kernel" in c for c in comm.commands) == 1


# --- the options -------------------------------------------------------------------------


@pytest.mark.parametrize("builder", ["qemu", "openbsd-vmm"])
@pytest.mark.parametrize("option", gz.FINAL_OPTIONS)
def test_each_option_needs_ssh(builder, option):
    from packwrap.plugins import builder_for

    schema = builder_for(builder).schema
    base = {"qemu": {"iso_url": "x.iso", "iso_checksum": "none"},
            "openbsd-vmm": {"vm_name": "v", "output_directory": "o", "disk_size": "1G",
                            "boot": "bsd.rd"}}[builder]  # fmt: skip
    body = SourceBody({**base, "communicator": "none", option: True}, "t.pkr.hcl", 3)
    problems = schema.prepare(body)[1]
    assert [p.option for p in problems] == [option]
    assert 'needs communicator = "ssh"' in problems[0].message
    config = schema.prepare(SourceBody({**base, option: True}, "t.pkr.hcl", 3))[0]
    assert config.get(option) is True


def test_vmm_boots_the_disk_for_final_steps_alone():
    from packwrap_vmm.config import SCHEMA, wants_provisioning

    body = {"vm_name": "v", "output_directory": "o", "disk_size": "1G", "boot": "bsd.rd"}
    plain = SCHEMA.prepare(SourceBody(body, "t", 1))[0]
    assert wants_provisioning(plain, False) is False
    generalized = SCHEMA.prepare(SourceBody({**body, "generalize": True}, "t", 1))[0]
    assert wants_provisioning(generalized, False) is True


@pytest.mark.parametrize("builder", ["qemu", "openbsd-vmm"])
def test_both_builders_run_the_final_steps_between_provision_and_key_removal(builder):
    from packwrap.plugins import builder_for

    b = builder_for(builder)
    if isinstance(b, type):
        b = b()
    names = [s.name for s in b.steps(None)]  # an If(cond, step) has its step's name
    at = names.index("provision")
    assert names[at + 1 : at + 5] == [
        "syspatch",
        "build record",
        "generalize",
        "remove temporary ssh key",
    ]


# --- the build record --------------------------------------------------------------------


def _served_tree(tmp_path: Path):
    overlay = tmp_path / "overlay"
    (overlay / "site").mkdir(parents=True)
    (overlay / "install.conf").write_text("System hostname = prov\n")
    (overlay / "site" / "site76.tgz").write_bytes(b"set")

    class Server:
        roots = [overlay, tmp_path / "http"]

    return Server()


def test_the_record_names_versions_media_and_hashes(tmp_path, monkeypatch):
    (tmp_path / ".packwrap").mkdir()
    (tmp_path / ".packwrap" / "project.json").write_text(
        json.dumps({"blueprint": "openbsd", "instance": "openbsd-76", "release": "7.6"})
    )
    monkeypatch.setenv("PACKWRAP_SIGNIFY_DIR", str(tmp_path / "no-host-keys"))
    comm = FakeComm()
    (tmp_path / "install76.iso").write_bytes(b"iso")
    iso_sha = hashlib.sha256(b"iso").hexdigest()
    state = state_with(comm, tmp_path, build_record=True)
    state.data["iso_path"] = str(tmp_path / "install76.iso")
    state.data["http_server"] = _served_tree(tmp_path)
    state.data["site_sets"] = ["site76.tgz"]
    fields = build_record(state, now=0)
    assert fields == {
        "packwrap_version": fields["packwrap_version"],
        "blueprint": "openbsd-76",
        "release": "7.6",
        "build": "qemu.t",
        "medium": "install76.iso",
        "medium_sha256": iso_sha,
        "medium_signify_key": fields["medium_signify_key"],
        "response_file_sha256": hashlib.sha256(b"System hostname = prov\n").hexdigest(),
        "site_set_sha256.site76.tgz": hashlib.sha256(b"set").hexdigest(),
        "build_time": "1970-01-01T00:00:00Z",
    }
    assert fields["medium_signify_key"].startswith("openbsd-76-base.pub (keynum ")
    StepBuildRecord().run(state)
    text = comm.uploads["/etc/packwrap-build"]
    assert text.startswith("# /etc/packwrap-build: ")
    assert f"medium_sha256: {iso_sha}\n" in text
    assert comm.commands == ["chmod 644 /etc/packwrap-build"]
    assert state.data["build_record"]["medium_sha256"] == iso_sha


def test_without_a_medium_or_a_project_the_record_says_less(tmp_path):
    state = state_with(FakeComm(), tmp_path, build_record=True)
    state.data["iso_path"] = str(tmp_path / "gone.iso")
    fields = build_record(state, now=0)
    assert list(fields) == ["packwrap_version", "build", "build_time"]
    assert record_text({"a": "b"}).splitlines()[1:] == ["a: b"]


def test_the_manifest_carries_the_record(tmp_path):
    artifact = Artifact("transcend.qemu", "VM", [], "VM files", state={})
    artifact.state["build_record"] = {"packwrap_version": "0.1.0", "medium_sha256": "ab"}
    chains = prepare_chains(
        [
            [
                BlockSpec(
                    "manifest",
                    None,
                    SourceBody({"custom_data": {"medium_sha256": "mine"}}, "t.pkr.hcl", 9),
                )
            ]
        ]  # fmt: skip
    )
    ctx = PPContext("t", "qemu", "qemu.t", "u-1", RecordingUi(), cwd=tmp_path)
    run_chains(chains, artifact, ctx)
    entry = json.loads((tmp_path / "packer-manifest.json").read_text())["builds"][0]
    assert entry["custom_data"] == {"packwrap_version": "0.1.0", "medium_sha256": "mine"}


# --- the blueprint -----------------------------------------------------------------------


@pytest.fixture
def no_user_blueprints(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PACKWRAP_BLUEPRINT_PATH", raising=False)


def test_the_blueprint_passes_its_variables_to_both_sources(tmp_path, no_user_blueprints):
    from packwrap.cli import main

    on = [a for name in gz.FINAL_OPTIONS for a in ("--var", f"{name}=true")]
    args = ["new", "openbsd-76", str(tmp_path / "p"), "--no-root-password", "--builder", "all"]
    assert main([*args, "--var", "communicator=ssh", *on]) == 0
    template = (tmp_path / "p" / "openbsd-76.pkr.hcl").read_text()
    for name in gz.FINAL_OPTIONS:  # in the qemu and the openbsd-vmm source (packer fmt)
        assert len(re.findall(rf"^ +{name} += var\.{name}$", template, re.MULTILINE)) == 2
    values = (tmp_path / "p" / "openbsd-76.auto.pkrvars.hcl").read_text()
    assert "generalize" in values and "build_record" in values
    pure = ["new", "openbsd-76", str(tmp_path / "q"), "--no-root-password", "--pure-packer"]
    assert main(pure) == 0
    assert "generalize" not in (tmp_path / "q" / "openbsd-76.pkr.hcl").read_text()


def test_generalize_without_ssh_is_refused_by_new(tmp_path, no_user_blueprints, capsys):
    from packwrap.cli import main

    args = ["new", "openbsd-76", str(tmp_path / "p"), "--no-root-password"]
    assert main([*args, "--var", "generalize=true"]) != 0
    err = capsys.readouterr().err
    assert 'generalize runs over SSH: it needs communicator = "ssh"' in err
    assert not (tmp_path / "p").exists()  # nothing half-written
