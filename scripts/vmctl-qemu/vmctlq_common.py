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
  vm.conf.loaded       the vm.conf "vmd" runs with (first command, or `vmctl reload`)
  vmd.log              why vmd refused a vm.conf (vmd's file:line messages)
vm.conf              $VMCTL_QEMU_CONF or <state>/vm.conf, read by vmctlq_conf with vmd's rules
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import json
import os
import pwd
import re
import time
from pathlib import Path

from vmctlq_conf import ConfError, VmdConf, parse

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


# --- vm.conf, the caller, the socket ---------------------------------------------------


def conf_path(d: Path) -> Path:
    return Path(os.environ.get("VMCTL_QEMU_CONF") or d / "vm.conf")


def loaded_conf(d: Path) -> VmdConf | None:
    """The configuration "vmd" runs with: vm.conf as it was when vmd started (the first
    command) or at the last successful `vmctl reload`. None: vmd could not start (vm.conf
    refused; the reason is in <state>/vmd.log), as `rcctl start vmd` fails on OpenBSD."""
    snapshot = d / "vm.conf.loaded"
    if not snapshot.exists():
        path = conf_path(d)
        text = path.read_text() if path.exists() else ""
        try:
            parse(text, str(path))
        except ConfError as exc:
            with open(d / "vmd.log", "a") as log:
                log.write(f"vmd: {exc}\n")
            return None
        snapshot.write_text(text)
    return parse(snapshot.read_text(), str(conf_path(d)))


def reload_conf(d: Path) -> str | None:
    """`vmctl reload`: parse vm.conf again; the error (None: loaded)."""
    path = conf_path(d)
    text = path.read_text() if path.exists() else ""
    try:
        parse(text, str(path))
    except ConfError as exc:
        with open(d / "vmd.log", "a") as log:
            log.write(f"vmd: {exc}\n")
        return str(exc)
    (d / "vm.conf.loaded").write_text(text)
    return None


def caller_uid() -> int:
    """Who vmd takes the caller to be: the user $VMCTL_QEMU_USER names, else root (as
    packwrap run as root on OpenBSD), whatever uid the stand-in really runs as. The doas
    stand-in runs its command without $VMCTL_QEMU_USER, i.e. as root."""
    name = os.environ.get("VMCTL_QEMU_USER")
    return pwd.getpwnam(name).pw_uid if name else 0


def in_group(uid: int, gid: int) -> bool:
    """vmd's vm_checkperm group test: primary group or a member of the group."""
    if gid < 0:
        return False
    try:
        pw = pwd.getpwuid(uid)
    except KeyError:
        return False
    if pw.pw_gid == gid:
        return True
    try:
        return pw.pw_name in grp.getgrgid(gid).gr_mem
    except KeyError:
        return False


def socket_allows(conf: VmdConf, uid: int) -> bool:
    """/var/run/vmd.sock is socket owner (default root:wheel), mode 0660."""
    return uid == 0 or uid == conf.socket_uid or in_group(uid, conf.socket_gid)


def user_name(uid: int, gid: int = -1) -> str:
    """vmctl status OWNER: `user` or `user:group`."""
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    if gid >= 0:
        try:
            name += ":" + grp.getgrgid(gid).gr_name
        except KeyError:
            name += f":{gid}"
    return name


def wait_until(predicate, timeout: float, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
