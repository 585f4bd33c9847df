"""The one place that runs vmctl(8) and ifconfig(8) (argument lists, never a shell string).

Everything vmd tells us is read from deterministic sources: `vmctl start`'s
"started vm N successfully, tty /dev/X" line and `vmctl status` parsed by the
column names of its header (7.x: ID PID VCPUS MAXMEM CURMEM TTY OWNER STATE NAME;
6.x had no STATE), never by a loose regex over the whole output (the Go plugin's
`(\\d+)` matched a MAXMEM of `1.0G` on a stopped vm.conf VM).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from packwrap.sdk import PackwrapError, Size

#: vmctl(8) LOCAL INTERFACES: default `local prefix` of vm.conf(5).
DEFAULT_LOCAL_PREFIX = "100.64.0.0/10"

_STARTED = re.compile(r"^vmctl: started vm (\d+) successfully, tty (\S+)$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,62}$")


def vmctl_size(size: Size) -> str:
    """vmctl -s/-m: whole MiB (the schema refused anything else: vmctl rounds it down)."""
    return f"{size.mib}M"


class VmctlError(PackwrapError):
    """vmctl failed; the message says what is missing when we can tell."""


@dataclass(frozen=True)
class VmStatus:
    """One row of `vmctl status`; `-` fields are None."""

    id: int
    pid: int | None
    name: str
    tty: str | None = None  # as shown: "ttyp8" (OpenBSD) or "pts/3" (the QEMU stand-in)
    state: str | None = None  # None on pre-7.x vmctl (no STATE column)
    owner: str | None = None
    maxmem: str | None = None
    curmem: str | None = None
    vcpus: int | None = None

    @property
    def running(self) -> bool:
        if self.state is not None:
            return self.state not in ("stopped", "unknown") and self.pid is not None
        return self.pid is not None

    @property
    def tty_path(self) -> str | None:
        if not self.tty:
            return None
        return self.tty if self.tty.startswith("/") else "/dev/" + self.tty


def parse_status(text: str) -> list[VmStatus]:
    """Rows of `vmctl status` output, located by the header's column names."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    header_at = next((i for i, ln in enumerate(lines) if ln.split()[:1] == ["ID"]), None)
    if header_at is None:
        return []
    cols = lines[header_at].split()
    if "NAME" not in cols or cols[-1] != "NAME":
        raise VmctlError(f"unexpected `vmctl status` header: {lines[header_at].strip()!r}")
    rows: list[VmStatus] = []
    for line in lines[header_at + 1 :]:
        fields = line.split(None, len(cols) - 1)
        if len(fields) != len(cols):
            raise VmctlError(f"unexpected `vmctl status` row: {line.strip()!r}")
        row = {c: (None if v == "-" else v) for c, v in zip(cols, fields, strict=True)}
        try:
            rows.append(
                VmStatus(
                    id=int(row["ID"] or 0),
                    pid=int(pid) if (pid := row.get("PID")) else None,
                    name=row["NAME"] or "",
                    tty=row.get("TTY"),
                    state=row.get("STATE"),
                    owner=row.get("OWNER"),
                    maxmem=row.get("MAXMEM"),
                    curmem=row.get("CURMEM"),
                    vcpus=int(vcpus) if (vcpus := row.get("VCPUS")) else None,
                )
            )
        except ValueError:
            raise VmctlError(f"unexpected `vmctl status` row: {line.strip()!r}") from None
    return rows


def parse_started(stderr: str) -> tuple[int, str] | None:
    """(id, tty path) from `vmctl start`'s success line, or None."""
    for line in stderr.splitlines():
        m = _STARTED.match(line.strip())
        if m:
            return int(m.group(1)), m.group(2)
    return None


def local_addresses(
    vm_id: int, index: int = 0, prefix: str = DEFAULT_LOCAL_PREFIX
) -> tuple[str, str]:
    """(host tap, guest) addresses of a VM's `-L` interface number `index`.

    vmd (priv.c vm_priv_addr): prefix | (id << 8) | ((index + 1) * 2), guest = +1;
    so ids of 256 and more carry into the next octet (id 300 -> 100.65.44.2).
    """
    net = ipaddress.ip_network(prefix, strict=False)
    offset = (vm_id << 8) | ((index + 1) * 2)
    if vm_id <= 0 or offset + 1 >= net.num_addresses:
        raise VmctlError(f"vm id {vm_id} has no local address in {prefix}")
    host = net.network_address + offset
    return str(host), str(host + 1)


def parse_ifconfig_tap(text: str) -> dict[tuple[int, int], str]:
    """{(vm id, interface index): inet} from `ifconfig tap` (descriptions `vm<ID>-if<N>-<name>`)."""
    found: dict[tuple[int, int], str] = {}
    key: tuple[int, int] | None = None
    for line in text.splitlines():
        if line and not line[0].isspace():  # a new interface block "tap0: flags=..."
            key = None
            continue
        words = line.split()
        if words[:1] == ["description:"] and len(words) > 1:
            m = re.match(r"^vm(\d+)-if(\d+)-", words[1])
            key = (int(m.group(1)), int(m.group(2))) if m else None
        elif words[:1] == ["inet"] and len(words) > 1 and key is not None:
            found.setdefault(key, words[1])
    return found


def valid_vm_name(name: str) -> bool:
    """vmctl(8): letters, digits, '.', '-', '_'; starts with a letter; at most 63 chars."""
    return bool(_NAME.fullmatch(name))


Runner = Callable[..., subprocess.CompletedProcess]


class Driver:
    """vmctl and ifconfig as Python calls. `doas` prefixes `doas -n` (never prompts) to
    every command that talks to vmd; `vmctl create` talks to no daemon and runs as the
    user, so the image is the user's (under doas it would be root's, mode 0600)."""

    def __init__(
        self,
        vmctl_path: str | None = None,
        *,
        doas: bool = False,
        run: Runner = subprocess.run,
        env: dict[str, str] | None = None,
    ):
        self.env = dict(os.environ if env is None else env)
        self.vmctl = resolve_vmctl(vmctl_path, self.env)
        self.doas = doas
        self._run = run

    # --- command lines (pure; unit-tested against vmctl(8)'s synopsis) -----------------

    def argv(self, *args: str, privileged: bool = True) -> list[str]:
        # doas.c compares a `cmd` rule with the command as typed: self.vmctl is absolute
        # whenever vmctl was found on PATH, matching `cmd /usr/sbin/vmctl`.
        prefix = ["doas", "-n"] if self.doas and privileged else []
        return [*prefix, self.vmctl, *args]

    def console_argv(self, target: str) -> list[str]:
        """`vmctl console` (cu -r on the VM's tty), for a tty we may not open ourselves."""
        return self.argv("console", target)

    @staticmethod
    def create_args(
        path: str, fmt: str, *, size: Size | None = None, base: str | None = None
    ) -> list[str]:
        if base:
            return ["create", "-b", base, f"{fmt}:{path}"]
        if not size:
            raise VmctlError("vmctl create needs a size or a base image")
        return ["create", "-s", vmctl_size(size), f"{fmt}:{path}"]

    @staticmethod
    def convert_args(src: str, dst: str, fmt: str) -> list[str]:
        """`vmctl create -i`: `src` (its whole qcow2 backing chain) copied into a new
        standalone `fmt` image of its size."""
        return ["create", "-i", src, f"{fmt}:{dst}"]

    @staticmethod
    def start_args(
        name: str,
        *,
        disk: str,
        template: str | None = None,
        memory: Size | None = None,
        boot_device: str | None = None,
        boot: str | None = None,
        cdrom: str | None = None,
        local: bool = True,
    ) -> list[str]:
        # OpenBSD getopt does not permute: every flag before the name.
        args = ["start"]
        if local:
            args.append("-L")
        args += ["-d", disk]
        if template:
            args += ["-t", template]
        if memory:
            args += ["-m", vmctl_size(memory)]
        if boot_device:
            args += ["-B", boot_device]
        if boot:
            args += ["-b", boot]
        if cdrom:
            args += ["-r", cdrom]
        args.append(name)
        return args

    @staticmethod
    def stop_args(target: str, *, force: bool = False, wait: bool = False) -> list[str]:
        flags = ("f" if force else "") + ("w" if wait else "")
        return ["stop", *([f"-{flags}"] if flags else []), target]

    # --- running ----------------------------------------------------------------------

    def run(
        self, args: Sequence[str], *, timeout: float | None = 120, privileged: bool = True
    ) -> subprocess.CompletedProcess:
        argv = self.argv(*args, privileged=privileged)
        try:
            return self._run(
                argv, capture_output=True, text=True, env=self.env, timeout=timeout, check=False
            )
        except FileNotFoundError:
            missing = "doas" if self.doas and not shutil.which("doas") else self.vmctl
            raise VmctlError(
                f"{missing} not found: on OpenBSD it is part of the base system; "
                "elsewhere set vmctl_path (or PACKWRAP_VMCTL) to a vmctl stand-in"
            ) from None
        except subprocess.TimeoutExpired:
            raise VmctlError(f"`{' '.join(argv)}` did not finish in {timeout:.0f}s") from None

    def _fail(self, what: str, proc: subprocess.CompletedProcess) -> VmctlError:
        text = proc.stderr or proc.stdout
        return VmctlError(f"{what}: {explain(text, doas=self.doas, vmctl=self.vmctl)}")

    def check_ready(self) -> None:
        """Fail early, in one line, when vmd is not running or not ours to use, or when
        doas would refuse or prompt: `[doas -n] vmctl status`, the very command line the
        documented doas.conf rule (`cmd /usr/sbin/vmctl`) permits."""
        proc = self.run(["status"])
        if proc.returncode != 0 and not _status_says_empty(proc):
            raise self._fail("vmctl status failed", proc)

    def create(
        self, path: str, fmt: str, *, size: Size | None = None, base: str | None = None
    ) -> None:
        proc = self.run(self.create_args(path, fmt, size=size, base=base), privileged=False)
        if proc.returncode != 0:
            raise self._fail("vmctl create failed", proc)

    def convert(self, src: str, dst: str, fmt: str) -> None:
        # No timeout: it reads the whole virtual disk, however large; Ctrl-C stops it.
        proc = self.run(self.convert_args(src, dst, fmt), timeout=None, privileged=False)
        if proc.returncode != 0:
            raise self._fail("vmctl create -i failed", proc)

    def start(self, name: str, **kw: Any) -> tuple[int | None, str | None]:
        """Start a VM; (id, tty path) from vmctl's success line (None if it printed none)."""
        proc = self.run(self.start_args(name, **kw))
        if proc.returncode != 0:
            raise self._fail(f"vmctl start {name} failed", proc)
        started = parse_started(proc.stderr)
        return started if started else (None, None)

    def status(self, target: str | None = None) -> list[VmStatus]:
        proc = self.run(["status", *([target] if target else [])])
        if proc.returncode != 0:
            if _status_says_empty(proc):
                return []
            raise self._fail("vmctl status failed", proc)
        return parse_status(proc.stdout)

    def find(self, name: str) -> VmStatus | None:
        """The row of VM `name` (vmctl status NAME prints every row's header even when the
        name is unknown, so existence is decided by the rows, not the exit code)."""
        return next((vm for vm in self.status(name) if vm.name == name), None)

    def stop(
        self, target: str, *, force: bool = False, wait: bool = False, timeout: float | None = 120
    ) -> bool:
        """Stop a VM; False when it is not running (vmd: ENOENT "vm not found", EINVAL
        "failed: Invalid argument"; pre-7.x "cannot stop vm that is not running"). A
        graceful stop already under way (EALREADY) counts as requested."""
        proc = self.run(self.stop_args(target, force=force, wait=wait), timeout=timeout)
        text = (proc.stderr or "") + (proc.stdout or "")
        if any(t in text for t in ("vm not found", "not running", "failed: Invalid argument")):
            return False
        if "failed: Operation already in progress" in text:
            return True
        if proc.returncode != 0:
            raise self._fail(f"vmctl stop {target} failed", proc)
        return True

    def ifconfig_tap(self) -> dict[tuple[int, int], str]:
        """Tap addresses by (vm id, if index); {} when `ifconfig tap` is unavailable (Linux)."""
        exe = shutil.which("ifconfig", path=self.env.get("PATH"))
        if not exe:
            return {}
        try:
            proc = self._run(
                [exe, "tap"], capture_output=True, text=True, env=self.env, check=False, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return {}
        return parse_ifconfig_tap(proc.stdout) if proc.returncode == 0 else {}


def resolve_vmctl(configured: str | None, env: dict[str, str]) -> str:
    """vmctl_path from the template, else $PACKWRAP_VMCTL, else `vmctl` on PATH."""
    candidate = configured or env.get("PACKWRAP_VMCTL") or "vmctl"
    if os.sep in candidate:
        return candidate
    return shutil.which(candidate, path=env.get("PATH")) or candidate


def _status_says_empty(proc: subprocess.CompletedProcess) -> bool:
    # vmctl status exits 1 when vmd knows no VM at all, after printing the header.
    return proc.stdout.lstrip().startswith("ID") and not (proc.stderr or "").strip()


#: vmctl's texts (usr.sbin/vmctl/vmctl.c vm_start_complete / terminate_vm_complete, the
#: errno values from usr.sbin/vmd/vmd.c vm_instance / vm_register / vm_checkperm, 7.6)
#: -> what to do. The first match wins; `{doas}` and `{vmctl}` are filled in.
HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("doas: Operation not permitted",),
     "doas.conf permits no such command: add `permit nopass <you> as root cmd {vmctl}` "
     "to /etc/doas.conf"),
    (("doas: Authentication required",),
     "doas would prompt for a password: the /etc/doas.conf rule for {vmctl} needs `nopass`"),
    (("vmd.sock", "No such file"),
     "vmd is not running, or refused /etc/vm.conf (`doas vmd -n` shows why): "
     "`doas rcctl enable vmd && doas rcctl start vmd`"),
    (("vmd.sock", "Connection refused"), "vmd is not running: `doas rcctl start vmd`"),
    (("vmd.sock", "Permission denied"),
     "/var/run/vmd.sock is root:wheel 0660: add `socket owner <you>` to /etc/vm.conf and "
     "`doas rcctl restart vmd`{doas}"),
    (("File name too long",),
     "you may not start instances of vm_template: add `owner <you>` inside its "
     "`allow instance {{ ... }}` in /etc/vm.conf, then `doas vmctl reload`"),
    (("Too many processes",),
     "a VM of this name already exists (in vm.conf or running): choose another vm_name"),
    (("start vm command failed: Operation not permitted",),
     "vmd refused: without vm_template only root may start a VM{doas}; with it, its "
     "`allow instance {{ boot, cdrom, disk, interface, memory, owner <you> }}` must allow "
     "what this start sets, the template must not have a group owner (`owner user:group`: "
     "write `owner user`), and you must be able to read the ISO/kernel and write the disk"),
    (("Operation already in progress",),
     "the VM is running or being stopped: `vmctl stop -f -w <vm_name>`"),
    (("invalid template",),
     "vm_template is not a VM vmd loaded: check the name in /etc/vm.conf; every vm block "
     "needs a device (`disk /dev/null`), else vmd refuses the file (`doas vmd -n` shows "
     "why); then `doas vmctl reload`"),
    (("vmm bios firmware file not found",),
     "the BIOS for cdrom and disk boots is missing: `doas fw_update vmm`"),
    (("could not open disk image(s)",),
     "vmd could not open the disk image: check that it exists and is a raw or qcow2 image"),
    (("could not find specified iso image",), "the ISO (cdrom) does not exist"),
)  # fmt: skip


def explain(text: str, *, doas: bool = False, vmctl: str = "/usr/sbin/vmctl") -> str:
    """vmctl's error text, plus one line on what to do when we recognise the cause."""
    text = " ".join((text or "").split()) or "no output"
    for needles, hint in HINTS:
        if all(n in text for n in needles):
            alt = "" if doas else ", or set doas = true"
            return f"{text} ({hint.format(doas=alt, vmctl=vmctl)})"
    return text
