"""The fake vmctl that openbsd-vmm step tests share (tests/unit/test_vmm_steps.py,
tests/unit/test_install_cache_vmm.py, tests/unit/test_vmm_flatten.py): the Driver's
subprocess seam, with a real pty as the VM's console. The `fake` fixture reaches every
test through tests/conftest.py's pytest_plugins; `make_state` builds a vmm state on it."""

from __future__ import annotations

import os
import subprocess
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest
from packwrap_vmm.config import SCHEMA
from packwrap_vmm.driver import Driver

from packwrap.build.state import State
from packwrap.config.schema import SourceBody
from tests import state_support

FMT = "%5s %5s %5s %7s %7s %7s %12s %8s %s"
HEADER = FMT % ("ID", "PID", "VCPUS", "MAXMEM", "CURMEM", "TTY", "OWNER", "STATE", "NAME")


class FakeVmctl:
    """Just enough of vmd: create makes the file (`create -i` copies its input), start
    registers a VM on a real pty. `fail_create_i`: the stderr of a failing `create -i`,
    which leaves a half-written destination as the real one does."""

    def __init__(self, vm_id: int = 7):
        self.calls: list[list[str]] = []
        self.argvs: list[list[str]] = []
        self.vms: dict[str, tuple[int, str]] = {}
        self.vm_id = vm_id
        self.ignore_graceful = False
        self.fail_create_i: str | None = None
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.tty = os.ttyname(slave)
        self.slave = slave

    def __call__(self, argv, **kw):
        self.argvs.append(list(argv))
        args = argv[3:] if argv[:2] == ["doas", "-n"] else argv[1:]
        self.calls.append(args)
        cmd = args[0]
        if cmd == "create":
            return self._create(argv, args)
        if cmd == "start":
            self.vms[args[-1]] = (self.vm_id, self.tty)
            return subprocess.CompletedProcess(
                argv, 0, "", f"vmctl: started vm {self.vm_id} successfully, tty {self.tty}\n"
            )
        if cmd == "status":
            rows = [HEADER] + [
                FMT % (i, 4242, 1, "512M", "512M", t[len("/dev/") :], "me", "running", n)
                for n, (i, t) in self.vms.items()
                if len(args) == 1 or args[1] == n
            ]
            return subprocess.CompletedProcess(argv, 0, "\n".join(rows) + "\n", "")
        if cmd == "stop":
            name = args[-1]
            if self.ignore_graceful and len(args) == 2 and name in self.vms:
                return subprocess.CompletedProcess(argv, 0, "", "requested to shutdown vm 7\n")
            if self.vms.pop(name, None) is None:
                return subprocess.CompletedProcess(
                    argv, 1, "", f"stopping vm {name}: vm not found\n"
                )
            return subprocess.CompletedProcess(
                argv, 0, "", f"stopping vm {name}: terminated vm 7\n"
            )
        raise AssertionError(args)

    def _create(self, argv, args) -> subprocess.CompletedProcess:
        fmt, path = args[-1].split(":", 1)
        dest = Path(path)
        if dest.exists():
            return subprocess.CompletedProcess(
                argv, 1, "", "vmctl: create imagefile operation failed: File exists\n"
            )
        if args[1] == "-i":
            dest.write_bytes(b"half")
            if self.fail_create_i is not None:
                return subprocess.CompletedProcess(argv, 1, "", self.fail_create_i)
            dest.write_bytes(Path(args[2]).read_bytes())
        else:
            dest.write_bytes(b"\0" * 512)
        return subprocess.CompletedProcess(argv, 0, "", f"vmctl: {fmt} imagefile created\n")


@pytest.fixture
def fake() -> Iterator[FakeVmctl]:
    f = FakeVmctl()
    yield f
    os.close(f.master)
    os.close(f.slave)


def make_state(tmp_path: Path, fake: FakeVmctl, force=False, **values) -> State:
    body = {"vm_name": "myvm", "output_directory": str(tmp_path / "out"), "disk_size": "64M",
            "boot": "/bsd.rd", "log_directory": str(tmp_path / "logs"), **values}  # fmt: skip
    config, problems, _ = SCHEMA.prepare(SourceBody(body))
    assert not problems
    state = state_support.make_state(config, build="openbsd-vmm.t", force=force)
    state.data["vmm_driver"] = Driver("vmctl", run=fake, env={"PATH": "/nonexistent"})
    return state
