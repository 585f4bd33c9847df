"""The qemu builder's steps with stand-ins for QEMU and the console (unit seams only)."""

from __future__ import annotations

import threading

import pytest
from packwrap_qemu.artifact import artifact_files, make_artifact
from packwrap_qemu.builder import QemuBuilder
from packwrap_qemu.qemu import output_plan
from packwrap_qemu.step_http_ip import StepHTTPIPDiscover
from packwrap_qemu.step_run import render_qemuargs
from packwrap_qemu.step_wait_poweroff import StepWaitForPowerOff

from packwrap.build.state import State
from packwrap.build.steps.output_dir import StepOutputDir
from packwrap.config.schema import SourceBody
from packwrap.errors import Cancelled, PackwrapError
from tests import state_support


def make_state(tmp_path, force=False, **values) -> State:
    values = {"kernel": "bsd.rd", "communicator": "none",
              "output_directory": str(tmp_path / "out"), **values}  # fmt: skip
    body = SourceBody(values, file="t", line=1)
    config, problems, _ = QemuBuilder.schema.prepare(body)
    assert problems == []
    return state_support.make_state(config, force=force)


def test_output_dir_refuses_existing_then_force_replaces(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old").write_text("x")
    with pytest.raises(PackwrapError, match="already exists; use -force"):
        StepOutputDir(output_plan).run(make_state(tmp_path))
    state = make_state(tmp_path, force=True)
    StepOutputDir(output_plan).run(state)
    assert list((tmp_path / "out").iterdir()) == []
    assert state.data["vm_name"] == "packer-t"


def test_output_dir_removed_only_when_the_build_failed(tmp_path):
    state = make_state(tmp_path)
    step = StepOutputDir(output_plan)
    step.run(state)
    step.cleanup(state)
    assert (tmp_path / "out").is_dir()
    state.halted = True
    step.cleanup(state)
    assert not (tmp_path / "out").exists()


def test_http_address_hermetic_and_packer_style(tmp_path):
    state = make_state(tmp_path, hermetic_network=True)
    StepHTTPIPDiscover().run(state)
    assert (state.data["http_ip"], state.data["http_guest_port"]) == ("10.0.2.100", 80)
    assert state.data["http_bind_address"] == "127.0.0.1"
    state = make_state(tmp_path)
    StepHTTPIPDiscover().run(state)
    assert state.data["http_ip"] == "10.0.2.2" and "http_guest_port" not in state.data


class FakeVM:
    def __init__(self, exit_after=None, rc=0, reason="guest-shutdown"):
        self.exit_after, self.rc, self.reason, self.polls = exit_after, rc, reason, 0

    @property
    def exit_code(self):
        self.polls += 1
        return self.rc if self.exit_after is not None and self.polls > self.exit_after else None

    def shutdown_reason(self):
        return self.reason

    def stderr_tail(self):
        return "qemu: boom"


class FakeConsole:
    def __init__(self, text=""):
        self.buf = text

    def mark(self):
        return len(self.buf)

    def text_since(self, mark):
        return self.buf[mark:]

    def tail(self, n=15):
        return self.buf.strip().splitlines()[-n:]

    def wait_quiet(self, quiet, timeout):
        self.waited_quiet = (quiet, timeout)


def run_wait(tmp_path, vm, console=None, **values):
    state = make_state(tmp_path, **values)
    state.data.update(qemu=vm, console=console)
    StepWaitForPowerOff().run(state)
    return state


def test_power_off_and_reboot_are_success(tmp_path):
    assert run_wait(tmp_path, FakeVM(2)).data["shutdown_reason"] == "guest-shutdown"
    assert run_wait(tmp_path, FakeVM(0, reason="guest-reset")).data["shutdown_reason"]


def test_qemu_error_exit_fails_with_console_tail(tmp_path):
    with pytest.raises(PackwrapError) as err:
        run_wait(tmp_path, FakeVM(0, rc=1, reason=None), FakeConsole("boot\nkernel panic\n"))
    assert "QEMU exited with status 1: qemu: boom" in str(err.value)
    assert "kernel panic" in str(err.value)


def test_installer_failure_fails_fast(tmp_path):
    console = FakeConsole(
        'Question has no answer in response file: "Password for root account"\n'
        "failed; check /tmp/ai/ai.log\n(I)nstall, (U)pgrade, (A)utoinstall or (S)hell?\n"
    )
    with pytest.raises(PackwrapError) as err:
        run_wait(tmp_path, FakeVM(None), console, shutdown_timeout="1h")
    assert "installer failed" in str(err.value)
    assert "Password for root account" in str(err.value)
    assert err.value.details[-1].startswith("(I)nstall")
    assert console.waited_quiet == (0.5, 3.0)  # the whole failure message is let in first


def test_timeout(tmp_path):
    with pytest.raises(PackwrapError, match="Timeout while waiting for machine to shut down"):
        run_wait(tmp_path, FakeVM(None), FakeConsole("boot>\n"), shutdown_timeout="300ms")


def test_cancel_wakes_the_wait(tmp_path):
    state = make_state(tmp_path, shutdown_timeout="1h")
    state.data.update(qemu=FakeVM(None), console=None)
    threading.Timer(0.2, state.cancel_event.set).start()
    with pytest.raises(Cancelled):
        StepWaitForPowerOff().run(state)


def test_qemuargs_template_data():
    data = {"HTTPIP": "10.0.2.100", "HTTPPort": 80, "Name": "vm"}
    assert render_qemuargs([["-name", "{{ .Name }}-{{.HTTPPort}}"]], data) == [["-name", "vm-80"]]
    with pytest.raises(PackwrapError, match="unknown template field .Nope"):
        render_qemuargs([["-x", "{{ .Nope }}"]], data)


def test_artifact_lists_the_disk_not_the_logs(tmp_path):
    state = make_state(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    for name in ("packer-t", "packer-t.console.log", "packer-t.qemu.log"):
        (out / name).write_text("x")
    assert artifact_files(out) == [str(out / "packer-t")]
    state.data.update(output_dir=out, disk_path=out / "packer-t", vm_name="packer-t")
    artifact = make_artifact(state)
    assert (artifact.builder_id, artifact.id) == ("transcend.qemu", "VM")
    assert artifact.description == f"VM files in directory: {out}"
    assert artifact.state["diskType"] == "qcow2"


def test_media_checksum_is_verified(tmp_path):
    import hashlib

    from packwrap_qemu.step_media import StepResolveMedia

    iso = tmp_path / "install76.iso"
    iso.write_bytes(b"not really an iso")
    good = "sha256:" + hashlib.sha256(iso.read_bytes()).hexdigest()
    state = make_state(tmp_path, iso_url=f"file://{iso}", iso_checksum=good, kernel=None)
    StepResolveMedia().run(state)
    assert state.data["iso_path"] == iso.resolve()
    state = make_state(tmp_path, iso_url=str(iso), iso_checksum="sha256:" + "0" * 64, kernel=None)
    with pytest.raises(PackwrapError, match="checksum mismatch"):
        StepResolveMedia().run(state)
    state = make_state(
        tmp_path, iso_url=str(tmp_path / "missing.iso"), iso_checksum="none", kernel=None
    )
    with pytest.raises(PackwrapError, match="packwrap fetch-iso"):
        StepResolveMedia().run(state)


def test_remote_iso_is_taken_from_iso_target_path(tmp_path):
    from packwrap_qemu.step_media import StepResolveMedia

    url = "https://cdn.openbsd.org/pub/OpenBSD/7.6/amd64/install76.iso"
    target = tmp_path / "iso" / "install76.iso"
    state = make_state(
        tmp_path, iso_url=url, iso_checksum="none", iso_target_path=str(target), kernel=None
    )
    with pytest.raises(PackwrapError, match=f"run `packwrap fetch-iso --output {target}` first"):
        StepResolveMedia().run(state)
    target.parent.mkdir()
    target.write_bytes(b"iso")
    StepResolveMedia().run(state)
    assert state.data["iso_path"] == target.resolve()


def test_output_dir_never_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = make_state(tmp_path, force=True, output_directory=".")
    with pytest.raises(PackwrapError, match="working or template directory"):
        StepOutputDir(output_plan).run(state)
    assert tmp_path.exists()


def test_provisioning_steps_follow_the_communicator(tmp_path):
    def names(**values):  # the steps the runner runs (an If whose condition fails is skipped)
        state = make_state(tmp_path, **values)
        return [s.name for s in QemuBuilder().steps(state.config) if s.applies(state)]

    none = names()
    assert "connect" not in none and "temporary ssh key" not in none
    assert none[-2:] == ["provision", "convert disk"]  # says provisioners are skipped
    ssh = names(communicator="ssh", ssh_username="root")
    assert ssh.index("temporary ssh key") < ssh.index("http server")
    tail = ssh[ssh.index("wait for power-off") :]
    assert tail == ["wait for power-off", "store install in cache", "start QEMU (disk)",
                    "connect", "provision", "remove temporary ssh key", "shutdown",
                    "convert disk"]  # fmt: skip


def test_the_steps_run_qemu_img_through_the_builds_driver(tmp_path):
    from packwrap_qemu.step_convert_disk import StepConvertDisk
    from packwrap_qemu.step_create_disk import StepCreateDisk

    class RecordingDriver:
        def __init__(self) -> None:
            self.calls: list[tuple] = []

        def create_disk(self, path, fmt, size, extra=()):
            self.calls.append(("create", path.name, fmt, size.bytes))
            path.write_bytes(b"")

        def convert_disk(self, src, dst, fmt, *, compress, extra=()):
            self.calls.append(("convert", src.name, fmt, compress))
            dst.write_bytes(b"compacted")

    state = make_state(tmp_path, format="qcow2", disk_size="2G")
    state.data["qemu_driver"] = drv = RecordingDriver()
    StepOutputDir(output_plan).run(state)
    StepCreateDisk().run(state)
    StepConvertDisk().run(state)
    assert drv.calls == [("create", "packer-t", "qcow2", 2 << 30),
                         ("convert", "packer-t", "qcow2", False)]  # fmt: skip
    assert (tmp_path / "out" / "packer-t").read_bytes() == b"compacted"


def test_disk_image_with_ssh_is_one_run_as_packers(tmp_path):
    """disk_image boots an installed image: connect in the same run, no power-off wait."""
    values = dict(communicator="ssh", ssh_username="root", kernel=None, iso_url="b.qcow2",
                  iso_checksum="none", disk_image=True)  # fmt: skip
    state = make_state(tmp_path, **values)
    names = [s.name for s in QemuBuilder().steps(state.config) if s.applies(state)]
    assert names.count("start QEMU") == 1 and "start QEMU (disk)" not in names
    assert "wait for power-off" not in names
    assert names.index("resize disk") == names.index("create disk") + 1
    state = make_state(tmp_path, **{**values, "communicator": "none"})
    names = [s.name for s in QemuBuilder().steps(state.config) if s.applies(state)]
    assert "wait for power-off" in names  # no communicator: the image powers itself off
