"""`packwrap build` under injected faults, end to end on the fixture, both builders
(qemu directly; openbsd-vmm through the vmctl stand-in first on PATH).

- SIGINT / SIGTERM to the `packwrap build` process (by its pid) inside each step: exit
  130, no QEMU / stand-in process left, the HTTP port closed, no artifact, manifest or
  checksum left, and the build log names the interrupted step. With -on-error=abort: the
  VM and disk are left, the printed hints say how to clean up, and doing what they say
  leaves nothing behind.
- kill -9 of the VM's QEMU mid-install: the build fails at once with the console tail.
- A guest hanging at a prompt: the builder's timeout fires, with the console tail.
- A docroot file the guest asks for is missing: the build log shows the 404, the error
  shows the console tail.

Signals land inside a step deterministically: long steps (boot command, install wait,
post-processors hashing a 2G raw disk) are hit when their headline appears; steps that
take milliseconds are hit through a test-only pause hook (tests/faults/build_support.py).
openbsd-vmm's provisioning steps (communicator = "ssh") run `packwrap build` in a private
network namespace where 100.64.0.0/10 is local (the recipe of
tests/e2e/test_provision_vmm.py, VMCTL_QEMU_BIOS for the stand-in's disk boot); there
the HTTP port is checked closed by the namespace being gone (no process left in it).
The default run covers every step the issue lists with SIGINT and a subset with SIGTERM
and -on-error=abort; PACKWRAP_FAULTS=full runs every step of both builders with both
signals, with and without -on-error=abort. Counts go to $PACKWRAP_FAULT_COUNTS.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import TOOLS, pid_alive
from tests.e2e.test_provision_vmm import netns_problem
from tests.faults.build_support import (
    INJECTED,
    MARK,
    QEMU_BOOT,
    STANDIN,
    SURVIVED,
    VMM_BOOT,
    FaultPackwrap,
    artifact_files,
    assert_netns_gone,
    assert_no_processes,
    assert_port_closed,
    build_log,
    cleanup_hints,
    finish,
    hint_commands,
    http_port,
    netns_of,
    new_project,
    output_dir,
    run_hints,
    vmm_provisioning_env,
    wait_for_any,
    write_counts,
    write_source,
)

pytestmark = pytest.mark.e2e

FULL = os.environ.get("PACKWRAP_FAULTS") == "full"
PP = "post-processor checksum"  # not a step: the post-processing after the steps


@dataclass(frozen=True)
class Step:
    name: str
    trigger: str | None = None  # headline to wait for; None: the pause hook
    disk: bool = True  # the disk exists once this step ran
    vm: bool = False  # the VM runs while in this step
    fmt: str = "raw"
    provisioning: str | None = None  # qemu's provisioning boot (see write_source)
    default: tuple[str, ...] = ()  # "INT", "TERM", "abort": what the default run covers
    extra: str = ""  # source lines that make the step do its work (vtpm = true, ...)
    did: str = ""  # what the build prints when that work was done (checked before the signal)


# disk_image: the fixture's ISO stands in for an image to build on (copied, then resized)
DISK_IMAGE = "  disk_image = true\n  skip_resize_disk = false"

QEMU_STEPS = [
    Step("check provisioners", disk=False, provisioning="plain"),
    Step("resolve boot media", disk=False),
    Step("prepare output directory", disk=False, default=("INT",)),
    Step("install cache", disk=False),
    # The device steps do their work only when asked: swtpm runs (a process to end), the
    # floppy image is written, the disk_image copy (the fixture's ISO as the image to
    # build on) is resized, the UEFI variables are copied.
    Step("start vTPM", disk=False, extra="  vtpm = true", did="swtpm pid"),
    Step(
        "create floppy",
        disk=False,
        extra='  floppy_content = { "pw.txt" = "fault" }',
        did="Creating floppy disk (packer)",
    ),
    Step("create disk", default=("INT", "TERM")),
    Step("resize disk", extra=DISK_IMAGE, did="Resizing "),
    Step("prepare UEFI variables", extra="  efi_boot = true", did="variables copied to"),
    Step("discover HTTP address"),
    Step("http server", default=("INT",)),
    Step("site-set"),
    Step("local sets"),
    Step("forward SSH port"),
    Step("start QEMU", vm=True, default=("INT", "TERM", "abort")),
    Step("installer drift guard", vm=True),
    Step("boot command", "Typing the boot command", vm=True, default=("INT",)),
    Step(
        "wait for power-off",
        "Waiting for the guest to power off",
        vm=True,
        default=("INT", "TERM", "abort"),
    ),
    Step("store install in cache"),
    # The provisioning boot: communicator = "ssh" and a shell provisioner.
    Step("temporary ssh key", provisioning="plain"),
    Step("start QEMU (disk)", vm=True, provisioning="plain"),
    Step("connect", "Waiting for SSH on", vm=True, provisioning="plain"),
    Step(
        "provision",
        "provisioning-start",
        vm=True,
        provisioning="slow",
        default=("INT", "TERM", "abort"),
    ),
    # The final guest steps (packwrap/provision/generalize.py), each asked for
    Step("syspatch", vm=True, provisioning="plain", extra="  syspatch = true", did="syspatch:"),
    Step(
        "build record",
        vm=True,
        provisioning="plain",
        extra="  build_record = true",
        did="Writing the build record",
    ),
    Step(
        "generalize",
        vm=True,
        provisioning="plain",
        extra="  generalize = true",
        did="Generalize: ",
    ),
    Step("remove temporary ssh key", vm=True, provisioning="plain"),
    Step(
        "shutdown",
        "Waiting up to 30s for the guest to power off",
        vm=True,
        provisioning="ignore-shutdown",
        default=("INT",),
    ),
    Step("convert disk", fmt="qcow2", default=("INT",)),
    Step(PP, "Running post-processor: checksum", default=("INT",)),
]
VMM_STEPS = [
    Step("check provisioners", disk=False, provisioning="plain", default=("INT",)),
    Step("output directory", disk=False, default=("INT",)),
    Step("install cache", disk=False),
    Step("create disk", default=("INT", "TERM")),
    Step("start vm (install)", vm=True, default=("INT", "TERM", "abort")),
    Step("temporary ssh key", vm=True, provisioning="plain", default=("INT", "TERM")),
    Step("http server", vm=True, default=("INT",)),
    Step("generated files", vm=True),
    Step("site-set", vm=True),
    Step("await console", vm=True),
    Step("boot command", "Typing the boot command", vm=True, default=("INT",)),
    Step(
        "wait for install",
        "Waiting for the install to finish",
        vm=True,
        default=("INT", "TERM", "abort"),
    ),
    Step("store install in cache"),
    # The provisioning boot (communicator = "ssh", a shell provisioner): `vmctl start`
    # from the disk, SSH to 100.64.<id>.3 -- in a private network namespace.
    Step("start vm (provision)", vm=True, provisioning="plain", default=("INT",)),
    Step("connect", "Waiting for SSH on", vm=True, provisioning="plain", default=("INT",)),
    Step("provision", "provisioning-start", vm=True, provisioning="slow", default=("INT", "TERM")),
    Step("remove temporary ssh key", vm=True, provisioning="plain", default=("INT",)),
    Step(
        "shutdown",
        "Waiting up to 30s for the guest to power off",
        vm=True,
        provisioning="ignore-shutdown",
        default=("INT",),
    ),
    Step(PP, "Running post-processor: checksum", default=("INT",)),
]
STEPS = {"qemu": QEMU_STEPS, "openbsd-vmm": VMM_STEPS}


def _signal_cases():
    for builder, steps in STEPS.items():
        for step in steps:
            for sig in ("INT", "TERM"):
                for on_error in ("cleanup", "abort"):
                    if on_error == "abort" and (sig == "TERM" or step.name == PP):
                        continue  # abort: SIGINT only; post-processing has nothing to keep
                    want = "abort" if on_error == "abort" else sig
                    if FULL or want in step.default:
                        yield pytest.param(
                            builder, step, sig, on_error,
                            id=f"{builder}-{step.name}-SIG{sig}-{on_error}".replace(" ", "_"),
                        )  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def counts():
    yield
    total = write_counts()
    print(f"\nbuild faults: {total}")


@pytest.fixture(scope="session")
def media() -> Path:
    """The bsd.rd stand-in (kernel, initrd, ISO), built once and cached."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    from tests.fixture_support import fixture_dir

    return Path(fixture_dir())


@pytest.fixture
def pw(tmp_path: Path):
    p = FaultPackwrap(tmp_path)
    try:
        yield p
    finally:
        p.cleanup()


@pytest.fixture
def vmd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pw: FaultPackwrap):
    """A private "vmd" for the openbsd-vmm builder: the stand-in first on PATH."""
    state = tmp_path / "vmd"
    monkeypatch.setenv("PATH", f"{STANDIN}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("VMCTL_QEMU_STATE", str(state))
    monkeypatch.delenv("PACKWRAP_VMCTL", raising=False)
    pw.state_dir = state
    return state


def setup_builder(request, builder: str, provisioning: str | None = None) -> bool:
    """True when the build runs in its own network namespace (vmm provisioning)."""
    if builder != "openbsd-vmm":
        return False
    request.getfixturevalue("vmd")
    if not provisioning:
        return False
    if problem := netns_problem():
        pytest.skip(problem)
    monkeypatch = request.getfixturevalue("monkeypatch")
    media = request.getfixturevalue("media")
    for name, value in vmm_provisioning_env(media, provisioning).items():
        monkeypatch.setenv(name, value)
    return True


def start_build(pw, project, builder, *flags, pause=None, netns=False):
    return pw.start(
        "build", f"-only={builder}.fault", *flags, ".", cwd=project, pause=pause, netns=netns
    )


def start_installing(request, pw, tmp_path, media, builder) -> tuple[Path, Any]:
    """A build of a fresh project (5m install timeout), once the guest installs.
    -> (project, the build process)."""
    setup_builder(request, builder)
    project = new_project(pw, tmp_path, media, builder)
    write_source(project, builder, media, timeout="5m")
    proc = start_build(pw, project, builder)
    wait = "Waiting for the guest to power off" if builder == "qemu" else "Waiting for the install"
    wait_for_any(pw, proc, [wait], timeout=90)
    return project, proc


def assert_nothing_left(pw: FaultPackwrap, project: Path, builder: str, out: str) -> None:
    assert_no_processes(pw)
    assert_port_closed(pw, http_port(out))
    assert artifact_files(project, builder) == []
    assert not output_dir(project, builder).exists()


# -- signals during each step ------------------------------------------------------------------


@pytest.mark.parametrize(("builder", "step", "sig", "on_error"), list(_signal_cases()))
def test_signal_during_step(request, pw, tmp_path, media, builder, step, sig, on_error):
    netns = setup_builder(request, builder, step.provisioning)
    ssh = ("communicator=ssh",) if step.provisioning else ()  # install.conf: the key
    project = new_project(pw, tmp_path, media, builder, *ssh)
    write_source(project, builder, media, fmt=step.fmt, provisioning=step.provisioning,
                 timeout="30s", extra=step.extra)  # fmt: skip
    pause = None if step.trigger else step.name
    proc = start_build(pw, project, builder, f"-on-error={on_error}", pause=pause, netns=netns)
    wait_for_any(pw, proc, [step.trigger or f"{MARK} {step.name!r}"], timeout=90)
    ns = netns_of(proc.pid) if netns else None  # packwrap itself (unshare and sh exec'd)
    if step.did:  # the step did its work before the signal (not a no-op)
        wait_for_any(pw, proc, [step.did], timeout=5)
    kind = f"SIG{sig} during a step" + (" (-on-error=abort)" if on_error == "abort" else "")
    INJECTED[kind] += 1
    proc.send_signal(getattr(signal, f"SIG{sig}"))
    signalled = time.monotonic()
    rc, out = finish(pw, proc)
    took = time.monotonic() - signalled
    log = build_log(project, builder)
    assert took < 10, f"the build took {took:.1f}s to stop after the signal:\n{out}"

    assert rc == 130, out
    assert f"SIG{sig} received: cancelling builds" in out
    assert f"Build '{builder}.fault' was cancelled" in out
    if step.name == PP:
        assert "interrupted during post-processor 'checksum'" in log, log
    else:
        assert f"build interrupted during step {step.name!r}" in log, log
    if step.name == PP:
        check_post_processing_interrupted(pw, project, builder, out)
    elif on_error == "cleanup":
        assert_nothing_left(pw, project, builder, out)
    else:
        check_abort_leftovers(pw, project, builder, step, out)
    assert_netns_gone(ns)
    SURVIVED[kind] += 1


def check_post_processing_interrupted(pw, project, builder, out) -> None:
    """The steps had finished: the image is complete and kept (as Packer keeps a builder's
    artifact when post-processing fails), the manifest that ran before stays, but the
    interrupted checksum leaves no file; nothing runs or listens any more."""
    assert "kept (complete): " in out, out
    assert_no_processes(pw)
    assert_port_closed(pw, http_port(out))
    disk = next(output_dir(project, builder).glob("fault.*"))
    left = {p.name for p in artifact_files(project, builder)}
    assert left == {disk.name, "fault-manifest.json"}, left
    assert disk.stat().st_size == 2 << 30


def check_abort_leftovers(pw, project, builder, step, out) -> None:
    assert f"interrupted during step {step.name!r}; -on-error=abort: skipping cleanup" in out
    disk = next(iter(output_dir(project, builder).glob("fault.*")), None)
    assert (disk is not None) == step.disk, out
    vm_pids = sorted(pw.qemu_pids) if builder == "qemu" else [q for q, _ in pw.standin_pids()]
    assert bool([p for p in vm_pids if pid_alive(p)]) == step.vm, out
    hinted = step.disk or step.vm or "To clean up by hand:" in out  # e.g. swtpm's
    commands = hint_commands(cleanup_hints(out)) if hinted else []
    if step.vm:
        assert any(c[0] in ("kill", "vmctl") for c in commands), out
    if step.disk:
        assert ["rm", str(disk.resolve())] in commands or any(
            c[:2] == ["rm", "-r"] and disk.resolve().is_relative_to(c[2]) for c in commands
        ), out
    run_hints(commands)  # clean up the way the user is told to
    assert_no_processes(pw)
    assert disk is None or not disk.exists()
    assert_port_closed(pw, http_port(out))


# -- the VM killed mid-install --------------------------------------------------------------


@pytest.mark.parametrize("builder", ["qemu", "openbsd-vmm"])
def test_vm_killed_mid_install(request, pw, tmp_path, media, builder):
    project, proc = start_installing(request, pw, tmp_path, media, builder)
    if builder == "qemu":
        (vm,) = pw.qemu_pids
    else:
        ((vm, _),) = pw.standin_pids()
    INJECTED["kill -9 of the VM mid-install"] += 1
    os.kill(vm, signal.SIGKILL)
    killed = time.monotonic()
    rc, out = finish(pw, proc)
    assert time.monotonic() - killed < 10, "the build noticed the dead VM late"
    assert rc == 1, out
    error = out.split(f"Build '{builder}.fault' errored", 1)[1]
    assert ("QEMU exited" if builder == "qemu" else "stopped before the installer") in error
    assert_console_tail_in(error, project)
    assert_nothing_left(pw, project, builder, out)
    SURVIVED["kill -9 of the VM mid-install"] += 1


def assert_console_tail_in(error: str, project: Path) -> None:
    """The error carries the console's last lines (as the console log has them)."""
    logs = [p for p in (project / ".packwrap" / "logs").glob("*.log")
            if not p.name.startswith("packwrap-") and not p.name.endswith(".qemu.log")]  # fmt: skip
    assert len(logs) == 1, logs
    lines = [ln.strip() for ln in logs[0].read_text(errors="replace").splitlines()]
    last = [ln for ln in lines if ln][-3:]
    assert last and any(ln in error for ln in last), (last, error)


# -- the guest hanging at a prompt ---------------------------------------------------------


HANG_NO_URL = {  # "A" typed, the response file URL never: the installer waits forever
    "qemu": (QEMU_BOOT[0][:1], QEMU_BOOT[1][:1]),
    "openbsd-vmm": (VMM_BOOT[0][:4], VMM_BOOT[1][:4]),
}
HANG_EXPECT = {  # the boot command waits for a prompt the guest never prints
    "qemu": (QEMU_BOOT[0], [QEMU_BOOT[1][0], "Never printed?"]),
    "openbsd-vmm": (VMM_BOOT[0], [*VMM_BOOT[1][:4], "Never printed?"]),
}


@pytest.mark.parametrize("builder", ["qemu", "openbsd-vmm"])
@pytest.mark.parametrize("hang", ["install-timeout", "boot-expect-timeout"])
def test_guest_hanging_at_a_prompt(request, pw, tmp_path, media, builder, hang):
    setup_builder(request, builder)
    project = new_project(pw, tmp_path, media, builder)
    if hang == "install-timeout":  # the install wait's timeout (the prompts come in time)
        boot, timeout, expect_timeout = HANG_NO_URL[builder], "4s", "120s"
    else:  # the boot command's console wait (up to the first prompt takes ~5 s under TCG
        # on a quiet machine, 10-15 s with four workers on two cores)
        boot, timeout, expect_timeout = HANG_EXPECT[builder], "60s", "25s"
    write_source(project, builder, media, boot=boot, timeout=timeout, expect_timeout=expect_timeout)
    kind = f"guest hangs at a prompt ({hang})"
    INJECTED[kind] += 1
    proc = start_build(pw, project, builder)
    rc, out = finish(pw, proc, timeout=90)
    assert rc == 1, out
    error = out.split(f"Build '{builder}.fault' errored", 1)[1]
    assert_console_tail_in(error, project)
    if hang == "install-timeout":
        timeout = "shutdown_timeout" if builder == "qemu" else "install_timeout"
        assert timeout in error, error
        assert "Response file location?" in out  # where the guest was stuck
    else:
        assert "Never printed?" in error, error
        assert "Response file location?" in out
    assert_nothing_left(pw, project, builder, out)
    SURVIVED[kind] += 1


# -- a docroot file the guest asks for is missing ---------------------------------------------


@pytest.mark.parametrize("builder", ["qemu", "openbsd-vmm"])
@pytest.mark.parametrize("missing", ["disklabel", "install.conf.pkr.in"])
def test_docroot_file_missing(request, pw, tmp_path, media, builder, missing):
    setup_builder(request, builder)
    project = new_project(pw, tmp_path, media, builder)
    write_source(project, builder, media, timeout="5m")
    (project / "http" / missing).unlink()
    # Not a blueprint project any more: `build` would serve the missing file rendered.
    (project / ".packwrap" / "project.json").unlink()
    served = "/" + missing.removesuffix(".pkr.in")
    kind = f"docroot file missing ({served})"
    INJECTED[kind] += 1
    start = time.monotonic()
    proc = start_build(pw, project, builder)
    rc, out = finish(pw, proc, timeout=90)
    log = build_log(project, builder)
    assert rc == 1, out
    assert f"HTTP GET '{served}' -> 404" in log, log
    error = out.split(f"Build '{builder}.fault' errored", 1)[1]
    assert "the installer failed" in error, error  # seen on the console, not a timeout
    assert_console_tail_in(error, project)
    assert time.monotonic() - start < 60  # not after the 5m timeout
    assert_nothing_left(pw, project, builder, out)
    SURVIVED[kind] += 1


# -- a second signal while cleaning up ------------------------------------------------------


@pytest.mark.parametrize("builder", ["qemu", "openbsd-vmm"])
def test_second_signal_during_cleanup(request, pw, tmp_path, media, builder):
    """Ctrl-C twice (SIGINT, then SIGTERM while cleanups run): cleanup still finishes."""
    project, proc = start_installing(request, pw, tmp_path, media, builder)
    kind = "second signal during cleanup"
    INJECTED[kind] += 2
    proc.send_signal(signal.SIGINT)
    wait_for_any(pw, proc, ["cancelling builds and cleaning up"], timeout=10)
    proc.send_signal(signal.SIGTERM)
    rc, out = finish(pw, proc)
    assert rc == 130, out
    assert "Cleanup in progress; it cannot be skipped" in out
    assert "build interrupted during step" in build_log(project, builder)
    assert_nothing_left(pw, project, builder, out)
    SURVIVED[kind] += 2


# -- a signal while `vmctl start` itself runs -------------------------------------------------


@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_signal_while_vmctl_start_runs(request, pw, tmp_path, media, sig):
    """No pause hook: the signal arrives while the stand-in's `vmctl start` is still
    creating the VM (~1 s under TCG); the VM it then reports must still be stopped."""
    setup_builder(request, "openbsd-vmm")
    project = new_project(pw, tmp_path, media, "openbsd-vmm")
    write_source(project, "openbsd-vmm", media)
    proc = start_build(pw, project, "openbsd-vmm")
    wait_for_any(pw, proc, ["Starting VM fault for the install"], timeout=60)
    kind = f"SIG{sig} during a step"
    INJECTED[kind] += 1
    proc.send_signal(getattr(signal, f"SIG{sig}"))
    rc, out = finish(pw, proc)
    assert rc == 130, out
    assert "build interrupted during step 'start vm (install)'" in build_log(project, "openbsd-vmm")
    assert pw.standin_pids(), "vmctl start had not started a VM: the signal came too late?"
    assert_nothing_left(pw, project, "openbsd-vmm", out)
    SURVIVED[kind] += 1
