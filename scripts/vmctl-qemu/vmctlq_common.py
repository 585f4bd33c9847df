"""Shared state of the vmctl stand-in: the state directory, its lock, VM records, vm.conf.

State lives in $VMCTL_QEMU_STATE (default /tmp/vmctl-qemu-<uid>) so parallel test runs
use separate "vmd"s:
  lock                 flock(2) held while ids are allocated or records change
  ids.json             {"last": N, "claims": {"<name>": id}} (vmd's vm_claimid: a name
                       keeps its id for the life of "vmd")
  vms/<id>.json        one running VM (removed when its QEMU exits, as vmd forgets
                       instances); qemu_pid and supervisor_pid let tests kill leftovers
  vms/<id>.log         the supervisor's and QEMU's stderr
  pids                 "<qemu pid> <supervisor pid>" of every VM ever started (teardowns)
vm.conf              $VMCTL_QEMU_CONF or <state>/vm.conf: a tiny subset of vm.conf(5)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import re
import shlex
import time
from pathlib import Path

PROG = "vmctl"


def state_dir() -> Path:
    d = Path(os.environ.get("VMCTL_QEMU_STATE") or f"/tmp/vmctl-qemu-{os.getuid()}")
    (d / "vms").mkdir(parents=True, exist_ok=True)
    return d


@contextlib.contextmanager
def locked(d: Path):
    with open(d / "lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False


def records(d: Path) -> list[dict]:
    """Running VMs; a record whose supervisor died without cleaning up is dropped."""
    out = []
    for p in sorted((d / "vms").glob("*.json"), key=lambda p: int(p.stem)):
        rec = read_json(p)
        if rec is None:
            continue
        if rec.get("state") != "starting" and not pid_alive(rec.get("supervisor_pid")):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
            continue
        out.append(rec)
    return out


def claim_id(d: Path, name: str) -> int:
    """vmd's vm_claimid: a name keeps its id for the life of vmd; new names get the next.

    $VMCTL_QEMU_FIRST_ID (default 1) sets the first id, so tests can reach ids >= 256."""
    path = d / "ids.json"
    ids = read_json(path) or {
        "last": int(os.environ.get("VMCTL_QEMU_FIRST_ID", "1")) - 1,
        "claims": {},
    }
    if name not in ids["claims"]:
        ids["last"] += 1
        ids["claims"][name] = ids["last"]
        write_json(path, ids)
    return ids["claims"][name]


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


# --- sizes (scan_scaled(3) / fmt_scaled(3)) ---------------------------------------------

_SCALE = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def scan_scaled(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([BKMGTbkmgt]?)", text.strip())
    if not m:
        raise ValueError(text)
    return int(float(m.group(1)) * _SCALE[m.group(2).upper()])


def fmt_scaled(n: int) -> str:
    """fmt_scaled(3): at most 4 characters; one decimal below 10 of a unit."""
    for unit in ("B", "K", "M", "G", "T"):
        if n < 1024 or unit == "T":
            break
        n /= 1024.0
    if unit == "B":
        return f"{int(n)}B"
    return f"{n:.1f}{unit}" if n < 10 else f"{round(n)}{unit}"


# --- vm.conf (tiny subset) --------------------------------------------------------------


def conf_path(d: Path) -> Path:
    return Path(os.environ.get("VMCTL_QEMU_CONF") or d / "vm.conf")


def load_conf(d: Path) -> dict[str, dict] | None:
    """`vm "name" { memory 1G; boot "/p"; boot device net; cdrom "/p"; disk "/p";
    owner user; enable|disable; local interface; allow instance {...} }`; None without a file."""
    path = conf_path(d)
    if not path.exists():
        return None
    text = re.sub(r"#[^\n]*", "", path.read_text())
    vms: dict[str, dict] = {}
    for m in re.finditer(r'\bvm\s+"?([\w.-]+)"?\s*\{((?:[^{}]|\{[^{}]*\})*)\}', text):
        body = re.sub(r"allow\s+instance\s*\{[^{}]*\}", "", m.group(2))
        vm: dict = {"disks": [], "local": False}
        for stmt in re.split(r"[;\n]", body):
            words = shlex.split(stmt)
            if not words:
                continue
            if words[:2] == ["boot", "device"] and len(words) > 2:
                vm["boot_device"] = words[2]
            elif words[0] == "boot" and len(words) > 1:
                vm["boot"] = words[1]
            elif words[0] == "memory" and len(words) > 1:
                vm["memory"] = scan_scaled(words[1])
            elif words[0] == "cdrom" and len(words) > 1:
                vm["cdrom"] = words[1]
            elif words[0] == "disk" and len(words) > 1:
                vm["disks"].append(words[1])
            elif words[0] == "owner" and len(words) > 1:
                vm["owner"] = words[1]
            elif words[:2] == ["local", "interface"]:
                vm["local"] = True
        vms[m.group(1)] = vm
    return vms


def wait_until(predicate, timeout: float, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
