"""openbsd-vmm steps against a fake vmctl (the Driver's subprocess seam) and a real pty:
the Go plugin's bugs stay fixed (image check, cleanup, timeouts, failure detection)."""

from __future__ import annotations

import os

import pytest
from packwrap_vmm.builder import VmmBuilder
from packwrap_vmm.config import SCHEMA
from packwrap_vmm.driver import Driver
from packwrap_vmm.step_create_disk import StepCreateDisk
from packwrap_vmm.step_start_vm import StepStartVM
from packwrap_vmm.step_wait_install import StepWaitInstall
from packwrap_vmm.vmm import output_plan

from packwrap.build.console import ConsoleError
from packwrap.build.steps.output_dir import StepOutputDir
from packwrap.config.schema import SourceBody
from packwrap.errors import PackwrapError
from tests.vmm_support import make_state


def test_output_dir_refuses_an_existing_image_unless_force(tmp_path, fake):
    out = tmp_path / "out"
    out.mkdir()
    (out / "myvm.raw").write_text("old")
    with pytest.raises(PackwrapError, match="already exists; use -force"):
        StepOutputDir(output_plan).run(make_state(tmp_path, fake))
    StepOutputDir(output_plan).run(make_state(tmp_path, fake, force=True))
    assert not (out / "myvm.raw").exists()


def test_output_dir_created_and_removed_when_the_build_fails(tmp_path, fake):
    state = make_state(tmp_path, fake)
    step = StepOutputDir(output_plan)
    step.run(state)
    assert (tmp_path / "out").is_dir()
    state.halted = True
    step.cleanup(state)
    assert not (tmp_path / "out").exists()


def test_create_disk_and_remove_it_after_a_failure(tmp_path, fake):
    state = make_state(tmp_path, fake)
    StepOutputDir(output_plan).run(state)
    step = StepCreateDisk()
    step.run(state)
    disk = tmp_path / "out" / "myvm.raw"
    assert fake.calls[-1] == ["create", "-s", "64M", f"raw:{disk}"]
    step.cleanup(state)  # success: kept
    assert disk.exists()
    state.halted = True
    step.cleanup(state)
    assert not disk.exists()


def test_disk_base_must_be_qcow2(tmp_path, fake):
    raw = tmp_path / "base.raw"
    raw.write_bytes(b"\0" * 512)
    state = make_state(tmp_path, fake, disk_format="qcow2", disk_base=str(raw), disk_size=None)
    StepOutputDir(output_plan).run(state)
    with pytest.raises(PackwrapError, match="is not a qcow2 image"):
        StepCreateDisk().run(state)
    assert not any(c[0] == "create" for c in fake.calls)


def test_start_install_boot_then_cleanup_stops_it(tmp_path, fake):
    state = make_state(tmp_path, fake, iso_image="/i.iso", memory="256M")
    state.data["disk_path"] = str(tmp_path / "d.raw")
    step = StepStartVM("install")
    step.run(state)
    start = next(c for c in fake.calls if c[0] == "start")
    assert start == ["start", "-L", "-d", str(tmp_path / "d.raw"), "-m", "256M", "-B", "net",
                     "-b", "/bsd.rd", "-r", "/i.iso", "myvm"]  # fmt: skip
    assert state.data["vm_id"] == 7 and state.data["http_ip"] == "100.64.7.2"
    assert state.data["ssh_host"] == "100.64.7.3"
    assert state.data["http_bind_address"] == "127.0.0.1"  # 100.64.7.2 is not ours here
    os.write(fake.master, b"Welcome to the OpenBSD/amd64 7.6 installation program.\r\n")
    state.data["console"].expect("installation program", 5, state.cancel_event)
    step.cleanup(state)
    assert fake.calls[-1] == ["stop", "-fw", "myvm"]
    log = (tmp_path / "logs" / "myvm.log").read_text()
    assert "installation program" in log


def test_on_openbsd_the_tap_address_is_awaited_and_served(tmp_path, fake, monkeypatch):
    """vmd configures the tap after `vmctl start` returns: wait for it, never fall back
    to loopback (the guest cannot reach it)."""
    import packwrap_vmm.step_start_vm as start_mod

    answers = iter([{}, {}, {(7, 0): "100.64.7.2"}])
    monkeypatch.setattr(start_mod, "host_is_openbsd", lambda: True)
    monkeypatch.setattr(start_mod, "is_local_address", lambda a: a == "100.64.7.2")
    monkeypatch.setattr(Driver, "ifconfig_tap", lambda self: next(answers))
    state = make_state(tmp_path, fake)
    state.data["disk_path"] = str(tmp_path / "d.raw")
    step = StepStartVM("install")
    step.run(state)
    assert state.data["http_bind_address"] == "100.64.7.2"
    step.cleanup(state)


def test_tap_that_never_comes_fails_the_build(tmp_path, fake, monkeypatch):
    import packwrap_vmm.step_start_vm as start_mod

    monkeypatch.setattr(start_mod, "host_is_openbsd", lambda: True)
    monkeypatch.setattr(start_mod, "TAP_TIMEOUT", 0.3)
    monkeypatch.setattr(Driver, "ifconfig_tap", lambda self: {})
    state = make_state(tmp_path, fake)
    state.data["disk_path"] = str(tmp_path / "d.raw")
    step = StepStartVM("install")
    with pytest.raises(PackwrapError, match="did not configure the tap of vm 7"):
        step.run(state)
    step.cleanup(state)
    assert fake.calls[-1] == ["stop", "-fw", "myvm"]  # the VM it started is stopped


def test_doas_console_goes_through_vmctl_console(tmp_path, fake, monkeypatch):
    """Under doas root owns the VM's tty: the console is `doas -n vmctl console NAME`."""
    script = tmp_path / "doas"
    script.write_text(
        '#!/bin/sh\necho "via: $*"\necho "Connected to /dev/ttyp3 (speed 115200)"\nexec /bin/cat\n'
    )
    script.chmod(0o755)
    state = make_state(tmp_path, fake, doas=True)
    state.data["vmm_driver"] = Driver("/usr/sbin/vmctl", doas=True, run=fake,
                                      env={"PATH": str(tmp_path)})  # fmt: skip
    state.data["disk_path"] = str(tmp_path / "d.raw")
    step = StepStartVM("install")
    step.run(state)
    console = state.data["console"]
    assert "via: -n /usr/sbin/vmctl console myvm" in console.text()
    assert state.data["console_guest_from"] == console.mark()  # cu's banner is not the guest
    console.write(b"~x\r")
    console.expect("~~x", 5, state.cancel_event)  # cu's escape doubled at a line start
    proc = step.console_proc
    step.cleanup(state)
    assert proc.poll() is not None  # ended with the console
    assert all(a[:3] == ["doas", "-n", "/usr/sbin/vmctl"] for a in fake.argvs)


def test_wait_install_fails_fast_on_the_installers_failure(tmp_path, fake):
    state = make_state(tmp_path, fake, install_timeout="30s")
    state.data["disk_path"] = str(tmp_path / "d.raw")
    start = StepStartVM("install")
    start.run(state)
    try:
        os.write(fake.master, b"Question has no answer in response file: \"x\"\r\n"
                              b"failed; check /tmp/ai/ai.log\r\n")  # fmt: skip
        with pytest.raises(ConsoleError, match="installer failed") as err:
            StepWaitInstall(poll_interval=0.05).run(state)
        assert any("ai.log" in line for line in err.value.details)
    finally:
        start.cleanup(state)


def test_wait_install_times_out(tmp_path, fake):
    state = make_state(tmp_path, fake, install_timeout="0.3s")
    state.data["disk_path"] = str(tmp_path / "d.raw")
    start = StepStartVM("install")
    start.run(state)
    try:
        with pytest.raises(ConsoleError, match="install_timeout"):
            StepWaitInstall(poll_interval=0.05).run(state)
    finally:
        start.cleanup(state)
    assert fake.vms == {}


def test_wait_install_ends_when_the_vm_is_gone(tmp_path, fake):
    state = make_state(tmp_path, fake)
    StepWaitInstall(poll_interval=0.05).run(state)  # no such VM: the install ended
    assert "Install finished" in state.ui.lines[-1]


def test_ctrl_c_interrupts_the_wait(tmp_path, fake):
    state = make_state(tmp_path, fake)
    fake.vms["myvm"] = (7, fake.tty)
    state.cancel_event.set()
    with pytest.raises(PackwrapError, match="interrupted"):
        StepWaitInstall(poll_interval=0.05).run(state)


def test_artifact(tmp_path, fake):
    state = make_state(tmp_path, fake)
    state.data["disk_path"] = str(tmp_path / "out" / "myvm.raw")
    art = VmmBuilder().artifact(state.config, state)
    assert (art.builder_id, art.id, art.description) == ("packer.openbsd-vmm", "VMM", "Image: myvm")
    assert art.files == [str(tmp_path / "out" / "myvm.raw")]


def shutdown_step():
    return next(s.step for s in VmmBuilder().steps(SCHEMA.prepare(SourceBody(
        {"vm_name": "x", "output_directory": "o", "disk_size": "1M", "boot": "/b"}))[0])
        if getattr(s, "name", "") == "shutdown")  # fmt: skip


def test_shutdown_stops_the_vm_with_vmctl_stop(tmp_path, fake):
    state = make_state(tmp_path, fake, shutdown_timeout="5s")
    fake.vms["myvm"] = (7, fake.tty)
    shutdown_step().run(state)
    assert ["stop", "myvm"] in fake.calls and fake.vms == {}


def test_shutdown_timeout_fires_and_forces(tmp_path, fake):
    state = make_state(tmp_path, fake, shutdown_timeout="0.3s")
    fake.vms["myvm"] = (7, fake.tty)
    fake.ignore_graceful = True
    with pytest.raises(PackwrapError, match="stopped by force"):
        shutdown_step().run(state)
    assert fake.calls[-1] == ["stop", "-fw", "myvm"] and fake.vms == {}


def test_gen_files_render_into_the_overlay_never_the_docroot(tmp_path, fake):
    from packwrap_vmm.step_gen_files import StepGenFiles

    docroot = tmp_path / "docroot"
    (docroot / "sub").mkdir(parents=True)
    (docroot / "myvm.autoinstall.tmpl").write_text("url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/\n")
    (docroot / "sub" / "myvm-disklabel.tmpl").write_text("name={{ .VMName }}\n")
    (docroot / "other.tmpl").write_text("not mine")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    state = make_state(tmp_path, fake, http_directory=str(docroot), gen_files_extension="tmpl")
    state.data.update(http_overlay_dir=str(overlay), http_ip="100.64.7.2", http_port=8123,
                      vm_name="myvm")  # fmt: skip
    StepGenFiles().run(state)
    assert (overlay / "myvm.autoinstall").read_text() == "url=http://100.64.7.2:8123/\n"
    assert (overlay / "sub" / "myvm-disklabel").read_text() == "name=myvm\n"
    assert not (overlay / "other").exists()
    assert sorted(p.name for p in docroot.rglob("*")) == [
        "myvm-disklabel.tmpl", "myvm.autoinstall.tmpl", "other.tmpl", "sub"]  # fmt: skip


@pytest.mark.parametrize("on_error", ["cleanup", "abort"])
def test_failed_build_cleans_up_unless_abort(tmp_path, fake, on_error):
    from packwrap.build.runner import run_steps
    from packwrap.build.step import Step

    class Boom(Step):
        name = "boom"

        def run(self, state):
            raise PackwrapError("install went wrong")

    state = make_state(tmp_path, fake)
    state.options.on_error = on_error
    with pytest.raises(PackwrapError, match="install went wrong"):
        run_steps(
            [StepOutputDir(output_plan), StepCreateDisk(), StepStartVM("install"), Boom()], state
        )
    disk = tmp_path / "out" / "myvm.raw"
    if on_error == "abort":  # left for inspection, and the user is told what is left
        assert disk.exists() and "myvm" in fake.vms
        assert any(str(disk) in line for line in state.ui.lines)
        assert any("vmctl stop -f -w myvm" in line for line in state.ui.lines)
    else:
        assert not disk.exists() and fake.vms == {}
        assert ["stop", "-fw", "myvm"] in fake.calls


def test_a_static_address_must_be_the_started_vms_own(tmp_path, fake):
    """vmd picks the id, so the /31 is known only after `vmctl start` (id 7 here)."""
    own = {"guest_ipv4": "100.64.7.3/31", "guest_ipv4_route": "100.64.7.2"}
    state = make_state(tmp_path, fake, **own)
    state.data["disk_path"] = str(tmp_path / "d.raw")
    step = StepStartVM("install")
    step.run(state)
    step.cleanup(state)
    other = {"guest_ipv4": "100.64.9.3/31", "guest_ipv4_route": "100.64.9.2"}
    state = make_state(tmp_path, fake, **other)
    state.data["disk_path"] = str(tmp_path / "d.raw")
    step = StepStartVM("install")
    with pytest.raises(PackwrapError, match=r"as id 7, whose local address is 100\.64\.7\.3/31"):
        step.run(state)
    step.cleanup(state)
    assert fake.calls[-1] == ["stop", "-fw", "myvm"]  # the VM it started is stopped
