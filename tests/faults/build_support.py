"""Helpers for the build fault tests (tests/faults/test_build_faults.py).

- A test-only pause hook: `python -m tests.faults.build_support build ...` is `packwrap
  build` with one change when $PWFAULT_PAUSE_STEP names a step: right after that step's
  run returns (the step's work done, the runner not yet past it), the build thread prints
  `PWFAULT paused after step '<name>'` and waits for the build's cancel event (at most
  $PWFAULT_PAUSE_LIMIT seconds). That lands a signal inside steps that take milliseconds
  (output dir, disk, HTTP server, ...) deterministically. Long steps (boot command,
  install wait, post-processors) are hit without it, by watching their headline.
  Production code is not touched: only this process's copy of session.run_steps.
- FaultPackwrap: tests.e2e.conftest.Packwrap that starts builds with a unique tag in
  their environment, so every process a build left behind (QEMU, the stand-in's
  supervisor, a guestfwd `nc`) is found by /proc/<pid>/environ and killed by pid.
- Project writers for a fast qemu source (bsd.rd booted with -kernel) and an
  openbsd-vmm source (the blueprint's ISO boot), both with manifest + checksum.
- Leftover checks: processes, listening HTTP port, output files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from tests.e2e.conftest import REPO, Packwrap, pid_alive
from tests.e2e.test_provision_vmm import NETNS
from tests.fixture_support import BASE_APPEND
from tests.packwrap_runner import cli_env

PAUSE_ENV = "PWFAULT_PAUSE_STEP"
LIMIT_ENV = "PWFAULT_PAUSE_LIMIT"
TAG_ENV = "PWFAULT_TAG"
MARK = "PWFAULT paused after step"
HTTP_PORT = re.compile(r"Starting HTTP server on ([\d.]+):(\d+)")
STANDIN = REPO / "scripts" / "vmctl-qemu"


# -- the pause hook (runs inside the packwrap process) -----------------------------------


def _install_pause(step_name: str, limit: float) -> None:
    from packwrap.build import session

    real = session.run_steps

    def run_steps(steps, state, **kwargs):  # type: ignore[no-untyped-def]
        for step in steps:
            if step.name == step_name:
                _pause_after(step, limit)
        return real(steps, state, **kwargs)

    session.run_steps = run_steps


def _pause_after(step, limit: float) -> None:  # type: ignore[no-untyped-def]
    inner = step.run

    def run(state):  # type: ignore[no-untyped-def]
        inner(state)
        sys.stderr.write(f"{MARK} {step.name!r}\n")
        sys.stderr.flush()
        state.cancel_event.wait(limit)

    step.run = run


def main() -> None:
    step = os.environ.get(PAUSE_ENV)
    if step:
        _install_pause(step, float(os.environ.get(LIMIT_ENV, "20")))
    from packwrap.cli import main as cli_main

    sys.exit(cli_main())


# -- running builds -----------------------------------------------------------------------


def tagged_pids(tag: str) -> list[int]:
    """Live processes whose environment carries PWFAULT_TAG=<tag> (a build's offspring)."""
    needle = f"{TAG_ENV}={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0") and pid_alive(int(entry)):
            found.append(int(entry))
    return found


class FaultPackwrap(Packwrap):
    """Packwrap runs with a per-test tag; `pause=` starts the build under the pause hook."""

    def __init__(self, tmp: Path):
        super().__init__(tmp)
        self.tag = uuid.uuid4().hex
        self.state_dir: Path | None = None  # the stand-in's, for the vmm builder

    def start(
        self, *args: str, cwd: Path, pause: str | None = None, netns: bool = False
    ) -> subprocess.Popen:
        env = cli_env(
            **{TAG_ENV: self.tag},
            PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        )
        env.pop(PAUSE_ENV, None)
        if pause:
            env[PAUSE_ENV] = pause
        module = "tests.faults.build_support" if pause else "packwrap"
        # `unshare -n` execs sh, which execs python: signals reach packwrap
        wrap = ["unshare", "-n", "sh", "-c", NETNS, "sh"] if netns else []
        return super().start(*args, cwd=cwd, env=env, module=module, wrap=wrap)

    def standin_pids(self) -> list[tuple[int, int]]:
        """(qemu pid, supervisor pid) of every VM the stand-in started for this test."""
        if self.state_dir is None:
            return []
        try:
            text = (self.state_dir / "pids").read_text()
        except FileNotFoundError:
            return []
        return [(int(a), int(b)) for a, b in (ln.split() for ln in text.splitlines() if ln)]

    def cleanup(self) -> None:
        super().cleanup()
        pids = [p for pair in self.standin_pids() for p in pair] + tagged_pids(self.tag)
        for pid in pids:
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def wait_for_any(pw: FaultPackwrap, proc: subprocess.Popen, texts: list[str], timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = pw.output(proc)
        if any(t in out for t in texts):
            return out
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    raise AssertionError(f"none of {texts!r} seen in packwrap's output:\n{pw.output(proc)}")


def finish(pw: FaultPackwrap, proc: subprocess.Popen, timeout: float = 30) -> tuple[int, str]:
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"packwrap did not exit within {timeout}s:\n{pw.output(proc)}"
        ) from None
    return rc, pw.output(proc)


# -- projects ------------------------------------------------------------------------------

APPEND = BASE_APPEND  # the fixture's kernel command line, one definition
QEMU_SOURCE = """
source "qemu" "fault" {{
  iso_url          = var.iso_url
  iso_checksum     = var.iso_checksum
  kernel           = "{media}/bsd.rd"
  initrd           = "{media}/bsd.rd.initrd"
  kernel_args      = "{append} pwfixture.cd=1"
  output_directory = "out-qemu"
  vm_name          = "fault.{fmt}"
  format           = "{fmt}"
  disk_size        = "2G"
  memory           = 256
  accelerator      = "tcg"
  hermetic_network = true
  http_directory   = "http"
  shutdown_timeout = "{timeout}"
  boot_command     = {boot_command}
  boot_expect      = {boot_expect}
  boot_expect_timeout = "{expect_timeout}"
{provisioning}
}}

build {{
  sources = ["source.qemu.fault"]
{provisioners}
  post-processor "manifest" {{
    output = "fault-manifest.json"
  }}
  post-processor "checksum" {{
    checksum_types = ["sha256"]
    output = "fault_{{{{.ChecksumType}}}}.checksum"
  }}
}}
"""

VMM_SOURCE = """
source "openbsd-vmm" "fault" {{
  vm_name          = "fault"
  output_directory = "out-vmm"
  disk_size        = "2G"
  disk_format      = "{fmt}"
  memory           = "256M"
  boot_device      = "cdrom"
  cdrom            = var.iso_url
  http_directory   = "http"
  install_timeout  = "{timeout}"
  boot_command     = {boot_command}
  boot_expect      = {boot_expect}
  boot_expect_timeout = "{expect_timeout}"
{provisioning}
}}

build {{
  sources = ["source.openbsd-vmm.fault"]
{provisioners}  post-processor "manifest" {{
    output = "fault-manifest.json"
  }}
  post-processor "checksum" {{
    checksum_types = ["sha256"]
    output = "fault_{{{{.ChecksumType}}}}.checksum"
  }}
}}
"""

URL = "http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.conf<enter>"
QEMU_BOOT = (["A<enter>", URL], ["(A)utoinstall or (S)hell? ", "Response file location?"])
VMM_BOOT = (
    ["stty com0 115200<enter>", "set tty com0<enter>", "<enter>", "A<enter>", URL],
    ["boot> ", "boot> ", "boot> ", "(A)utoinstall or (S)hell? ", "Response file location?"],
)


# The provisioning boot (qemu): the installed disk booted with bsd.rd in the fixture's
# installed mode, SSH with the build's temporary key, then `shutdown -p now`.
QEMU_PROVISIONING = """
  communicator     = "ssh"
  ssh_username     = "root"
  ssh_timeout      = "60s"
  provision_kernel = "{media}/bsd.rd"
  provision_initrd = "{media}/bsd.rd.initrd"
  provision_kernel_args = "{append} pwfixture.mode=installed{extra}"
  shutdown_command = "shutdown -p now"
"""
# The provisioning boot (openbsd-vmm): `vmctl start` from the disk, which the stand-in
# boots with $VMCTL_QEMU_BIOS (the tests set it and its kernel args); SSH to
# 100.64.<id>.3 inside the build's network namespace (FaultPackwrap.start(netns=True)).
VMM_PROVISIONING = """
  communicator     = "ssh"
  ssh_username     = "root"
  ssh_timeout      = "60s"
  shutdown_command = "shutdown -p now"
  shutdown_timeout = "{timeout}"
"""
QEMU_PROVISIONERS = """
  provisioner "shell" {{
    inline = {inline}
  }}
"""


def write_source(
    project: Path,
    builder: str,
    media: Path,
    *,
    fmt: str = "raw",
    timeout: str = "60s",
    expect_timeout: str = "120s",
    boot: tuple[list[str], list[str]] | None = None,
    provisioning: str | None = None,
    extra: str = "",
) -> None:
    """provisioning: None (communicator none), "plain", "slow" (the provisioner runs for
    20 s) or "ignore-shutdown" (the guest ignores the shutdown command; for openbsd-vmm
    the test sets VMCTL_QEMU_BIOS_APPEND to say so, see vmm_provisioning_env).
    extra: more lines for the source block (options that make a step do its work)."""
    template = QEMU_SOURCE if builder == "qemu" else VMM_SOURCE
    commands, expects = boot or (QEMU_BOOT if builder == "qemu" else VMM_BOOT)
    prov, provisioners = '  communicator     = "none"', ""
    if provisioning and builder == "qemu":
        ignore = " pwfixture.ignore_shutdown=1" if provisioning == "ignore-shutdown" else ""
        prov = QEMU_PROVISIONING.format(media=media, append=APPEND, extra=ignore)
    elif provisioning:  # vmm: the disk boot's kernel args are the stand-in's environment
        prov = VMM_PROVISIONING.format(timeout=timeout)
    if provisioning:
        inline = ["echo provisioning-start"] + (["sleep 20"] if provisioning == "slow" else [])
        provisioners = QEMU_PROVISIONERS.format(inline=json.dumps(inline))
    text = template.format(
        provisioning=prov + (f"\n{extra}" if extra else ""),
        provisioners=provisioners,
        media=media,
        append=APPEND,
        fmt=fmt,
        timeout=timeout,
        expect_timeout=expect_timeout,
        boot_command=json.dumps(commands),
        boot_expect=json.dumps(expects),
    )
    (project / "fault.pkr.hcl").write_text(text)


def vmm_provisioning_env(media: Path, provisioning: str) -> dict[str, str]:
    """The stand-in's disk boot for openbsd-vmm provisioning: the fixture's bsd.rd in
    installed mode (SSH), ignoring the shutdown command for "ignore-shutdown"."""
    extra = " pwfixture.ignore_shutdown=1" if provisioning == "ignore-shutdown" else ""
    return {
        "VMCTL_QEMU_BIOS": str(media / "bsd.rd"),
        "VMCTL_QEMU_BIOS_APPEND": f"pwfixture.mode=installed{extra}",
    }


def new_project(
    pw: FaultPackwrap, parent: Path, media: Path, builder: str, *variables: str
) -> Path:
    """`packwrap new openbsd-76` (for its install.conf, disklabel and variables), plus
    fault.pkr.hcl: the source the tests build (-only=<builder>.fault)."""
    project = parent / "img"
    args = [
        "new", "openbsd-76", str(project), "--builder", builder, "--no-root-password",
        "--var", f"iso_url={media / 'install76.iso'}", "--var", "iso_checksum=none",
        "--var", "disk_size=2G", "--var", "memory=256",
    ]  # fmt: skip
    for v in variables:
        args += ["--var", v]
    made = pw.run(*args, cwd=parent)
    assert made.rc == 0, made.out
    return project


def fault_build_name(builder: str) -> str:
    return f"{builder}.fault"


def build_log(project: Path, builder: str) -> str:
    path = project / ".packwrap" / "logs" / f"packwrap-{builder}.fault.log"
    return path.read_text(errors="replace")


def output_dir(project: Path, builder: str) -> Path:
    return project / ("out-qemu" if builder == "qemu" else "out-vmm")


def artifact_files(project: Path, builder: str) -> list[Path]:
    """What a finished build leaves: the disk (in the output dir), manifest, checksums."""
    out = output_dir(project, builder)
    files = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    files += list(project.glob("fault-manifest.json")) + list(project.glob("fault_*.checksum"))
    return files


def http_port(out: str) -> int | None:
    m = HTTP_PORT.search(out)
    return int(m.group(2)) if m else None


def port_listener_pids(port: int) -> list[int]:
    """Pids holding a LISTEN socket on `port` (any address), via /proc/net/tcp{,6}."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as fh:
            for line in fh.readlines()[1:]:
                f = line.split()
                if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] == "0A":
                    inodes.add(f[9])
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{entry}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{entry}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        pids.append(int(entry))
    return pids


def assert_port_closed(pw: FaultPackwrap, port: int | None) -> None:
    """Nothing of this build listens on the HTTP port any more. A connect that succeeds is
    only accepted when the listener is not ours (another test's server got the port)."""
    if port is None:
        return
    with socket.socket() as s:
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            return
    ours = set(tagged_pids(pw.tag))
    holders = port_listener_pids(port)
    assert holders and not ours.intersection(holders), (
        f"port {port} still listening (holders {holders}, this build's processes {ours})"
    )


def assert_no_processes(pw: FaultPackwrap, timeout: float = 10) -> None:
    """No process of this build is left: QEMU pids it printed, the stand-in's QEMU and
    supervisor pids, anything carrying the test's tag."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pw.qemu_pids if pid_alive(p)]
        left += [p for pair in pw.standin_pids() for p in pair if pid_alive(p)]
        left += tagged_pids(pw.tag)
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    assert not left, f"processes left behind: {describe(left)}"


def netns_of(pid: int) -> str:
    """The network namespace of a process ("net:[<inode>]")."""
    return os.readlink(f"/proc/{pid}/ns/net")


def assert_netns_gone(netns: str | None, timeout: float = 10) -> None:
    """No process is left in the build's private network namespace: the namespace, and
    with it every socket the build listened on there (HTTP, the SSH relay), is gone.
    (A connect to the HTTP port from the test's namespace could not tell.)"""
    if netns is None or netns == netns_of(os.getpid()):
        return
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if netns_of(int(entry)) == netns:
                        left.append(int(entry))
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    assert not left, f"the build's network namespace still has {describe(left)}"


def describe(pids: list[int]) -> list[str]:
    out = []
    for pid in sorted(set(pids)):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            cmd = "?"
        out.append(f"{pid}: {cmd[:160]}")
    return out


# -- -on-error=abort hints -------------------------------------------------------------------

HINT_COMMAND = re.compile(r"(kill \d+|rm(?: -r)? /\S+|vmctl stop -f -w \S+)")


def cleanup_hints(out: str) -> list[str]:
    """The hint lines printed under 'To clean up by hand:'."""
    assert "To clean up by hand:" in out, out
    lines = out.split("To clean up by hand:", 1)[1].splitlines()[1:]
    hints = []
    for line in lines:  # "==> <build>:   <hint>" (or bare "  <hint>")
        m = re.match(r"(?:==> \S+: )?  (\S.*)$", line)
        if not m:
            break
        hints.append(m.group(1))
    return hints


def hint_commands(hints: list[str]) -> list[list[str]]:
    cmds = []
    for hint in hints:
        m = HINT_COMMAND.search(hint.rstrip(")"))
        if m:
            cmds.append(shlex.split(m.group(1)))
    return cmds


def run_hints(cmds: list[list[str]]) -> None:
    """Do what the hints say (VM first, then files): argument lists, no shell."""

    def order(argv: list[str]) -> int:  # the VM, then files, then directories
        return 0 if argv[0] in ("kill", "vmctl") else 2 if argv[:2] == ["rm", "-r"] else 1

    for argv in sorted(cmds, key=order):
        if argv[0] == "kill" and not pid_alive(int(argv[1])):
            continue  # a QEMU that already ended (the install run, before provisioning)
        subprocess.run(argv, check=True, timeout=30, capture_output=True)
        if argv[0] == "kill":
            deadline = time.monotonic() + 10
            while pid_alive(int(argv[1])) and time.monotonic() < deadline:
                time.sleep(0.05)


# -- counts for the README table --------------------------------------------------------------

INJECTED: Counter[str] = Counter()
SURVIVED: Counter[str] = Counter()


def write_counts() -> dict:
    """Add this process's counts to $PACKWRAP_FAULT_COUNTS (JSON, key "build_faults"),
    under a lock: with pytest-xdist every worker adds its share."""
    total = {
        "faults_injected": sum(INJECTED.values()),
        "survived": sum(SURVIVED.values()),
        "by_kind": {k: {"injected": INJECTED[k], "survived": SURVIVED[k]} for k in INJECTED},
    }
    path = os.environ.get("PACKWRAP_FAULT_COUNTS")
    if not path or not INJECTED:
        return total
    target = Path(path)
    with open(target.with_name(target.name + ".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(target.read_text()) if target.exists() else {}
        except ValueError:
            data = {}
        mine = data.get("build_faults") or {"faults_injected": 0, "survived": 0, "by_kind": {}}
        mine["faults_injected"] += total["faults_injected"]
        mine["survived"] += total["survived"]
        for kind, c in total["by_kind"].items():
            slot = mine["by_kind"].setdefault(kind, {"injected": 0, "survived": 0})
            slot["injected"] += c["injected"]
            slot["survived"] += c["survived"]
        data["build_faults"] = mine
        tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, target)
    return total


if __name__ == "__main__":
    main()
