"""Start the VM (`vmctl start`, every flag before the name), find its id, tty and
addresses, and open its serial console.

No `-c`: the Go plugin ran `vmctl start -c` and wrote keys into vmctl's stdin,
which vmctl hands to cu(1). We open the VM's pty ourselves instead (the VM's owner
may: vmd.c vm_opentty gives the tty to the uid that started it, mode 0620), because then
- there is no cu(1) in the path, so a `~` at the start of a typed line is just a
  `~` (cu would take it as its escape character; `~.` would drop the console);
- no stdin-pipe hack and no fixed sleep: we know when the console is open;
- we read everything the guest prints (logged to <log_directory>/<vm_name>.log),
  so the boot command can wait for prompts and the install wait can spot failures.

With doas = true the VM was started by root, so root owns its tty: the console is
then `doas -n vmctl console NAME` (cu -r) on a pty of ours, typed through with `~`
doubled at line starts (cu's escape), which the documented doas.conf rule permits.

Id and tty come from vmctl's "started vm N successfully, tty /dev/X" line and from
`vmctl status NAME` parsed by column. The host side of the first -L interface is
100.64.<id>.2 (vmctl(8) LOCAL INTERFACES; ids >= 256 carry into the next octet), the
guest .3; `ifconfig tap` (description vm<ID>-if0-<name>) wins if it disagrees (a
`local prefix` in vm.conf moves the addresses). vmd configures the tap after `vmctl
start` has returned, so on OpenBSD the address is awaited (TAP_TIMEOUT) and the HTTP
server listens on it, never on loopback, which the guest cannot reach.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.sdk import ConsoleError, PackwrapError, SerialConsole, Step, guest_network
from packwrap_vmm.config import VmmConfig, config_of, install_boot_device, media_path
from packwrap_vmm.driver import local_addresses
from packwrap_vmm.vmm import driver, host_is_openbsd, is_local_address

if TYPE_CHECKING:
    from packwrap.sdk import State


#: How long vmd may take to give the VM's tap its address after `vmctl start`.
TAP_TIMEOUT = 30.0
#: cu(1)'s first line (usr.bin/cu: "Connected to %s (speed %d)").
CU_BANNER = re.compile(r"Connected to \S+ \(speed \d+\)\r?\n")
CU_BANNER_TIMEOUT = 15.0


def console_log_path(state: State) -> Path:
    cfg = config_of(state)
    directory = cfg.get("log_directory") or state.data.get("log_dir") or "."
    path = Path(os.path.expanduser(directory)) / f"{cfg.vm_name}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _check_static_address(cfg: VmmConfig, vm_id: int, guest: str) -> None:
    """A static guest_ipv4 in vmd's /31 (config.py) must be this VM's: vmd picks the id, so
    only now is it known which /31 the VM has."""
    static = guest_network.static_ipv4_of(cfg)
    if static is not None and str(static.address) != guest:
        raise PackwrapError(
            f"guest_ipv4 {static.interface}: vmd started the VM as id {vm_id}, whose local "
            f"address is {guest}/31 (route {ipaddress.ip_address(guest) - 1}); answer ipv4 = "
            "autoconf for the install, or this address"
        )


class StepStartVM(Step):
    def __init__(self, purpose: str = "install"):
        self.purpose = purpose  # "install" (boots the installer) | "provision" (the disk)
        self.name = f"start vm ({purpose})"
        self.started = False
        self.console: SerialConsole | None = None
        self.console_proc: subprocess.Popen | None = None  # doas vmctl console

    def run(self, state: State) -> None:
        cfg = config_of(state)
        drv = driver(state)
        name = cfg.vm_name
        if self.purpose == "install":
            drv.check_ready()
            if not cfg.vm_template and not cfg.doas and os.geteuid() != 0:
                state.ui.error(
                    "vm_template is not set: vmd lets only root start a VM without -t; "
                    "if vmctl says 'Operation not permitted', set doas = true or use a "
                    "vm.conf template with `owner <you>` in `allow instance` (see "
                    "docs/openbsd-hosts.md)"
                )
        else:
            self._close_previous_console(state)
        running = drv.find(name)
        if running is not None and running.running:
            raise PackwrapError(
                f"a VM named {name!r} is already running (id {running.id}); stop it with "
                f"`vmctl stop -f -w {name}` or choose another vm_name"
            )
        kwargs: dict = {
            "disk": state.data["disk_path"],
            "template": cfg.vm_template,
            "memory": cfg.memory,
        }
        if self.purpose == "install":
            # Always -B: vmd ends a VM with a one-shot boot device at the installer's
            # reboot; an instance inherits no boot device from its template (validate
            # refuses a config without one).
            kwargs.update(
                boot_device=install_boot_device(cfg) or "disk",
                boot=media_path(cfg.boot, state.template_dir),
                cdrom=media_path(cfg.cdrom, state.template_dir),
            )
            if kwargs["cdrom"]:  # the medium, as qemu's media step reports it
                state.data["iso_path"] = kwargs["cdrom"]
        argv = drv.start_args(name, **kwargs)
        state.ui.say(f"Starting VM {name} for the {self.purpose}: vmctl {' '.join(argv)}")
        hint = f"VM {name} (stop it with: vmctl stop -f -w {name})"
        if hint not in state.data.setdefault("cleanup_hints", []):
            state.data["cleanup_hints"].append(hint)
        self.started = True  # from here on cleanup stops it, even if the start half-failed
        vm_id, tty = drv.start(name, **kwargs)
        row = drv.find(name)
        if row is not None:
            vm_id = vm_id if vm_id is not None else row.id
            tty = tty or row.tty_path
        if vm_id is None or not tty:
            raise PackwrapError(
                f"vmctl started {name} but neither its output nor `vmctl "
                "status` names its id and tty"
            )
        host, guest = local_addresses(vm_id)
        on_vmd_host = host_is_openbsd()
        tap = self._await_tap(state, vm_id) if on_vmd_host else drv.ifconfig_tap().get((vm_id, 0))
        if tap and tap != host:
            state.ui.message(f"ifconfig tap says vm{vm_id}-if0 is {tap} (not {host}); using it")
            host = tap
            guest = str(ipaddress.ip_address(tap) + 1)
        if self.purpose == "install":
            _check_static_address(cfg, vm_id, guest)
        state.data.update(vm_id=vm_id, vm_tty=tty, host_ip=host, vm_ip=guest, ssh_host=guest)
        state.ui.message(f"VM id {vm_id}, console {tty}, host {host}, guest {guest}")
        if self.purpose == "install":
            state.data["http_ip"] = host
            if not (cfg.get("http_bind_address") or cfg.get("http_interface")):
                # Listen on the tap address (OpenBSD: always, it was awaited); elsewhere the
                # VM's network is emulated (the vmctl stand-in) and reaches us on loopback
                # unless the tap address is local (a test's network namespace).
                local = on_vmd_host or is_local_address(host)
                state.data["http_bind_address"] = host if local else "127.0.0.1"
        log = console_log_path(state)
        if cfg.doas:
            self.console = self._doas_console(state, drv, name, log)
        else:
            try:
                self.console = SerialConsole(tty, log, ui=state.ui)
            except OSError as exc:
                raise PackwrapError(
                    f"cannot open the VM's console {tty}: {exc.strerror} (vmd gives it to "
                    "the user who started the VM)"
                ) from None
        state.data["console"] = self.console
        state.data["console_log"] = str(log)
        state.ui.message(f"Console output is logged to {log}")

    def _await_tap(self, state: State, vm_id: int) -> str:
        """The tap address of the VM's first -L interface, once vmd has configured it."""
        drv = driver(state)
        deadline = time.monotonic() + TAP_TIMEOUT
        while True:
            tap = drv.ifconfig_tap().get((vm_id, 0))
            if tap and is_local_address(tap):
                return tap
            if time.monotonic() >= deadline:
                raise PackwrapError(
                    f"vmd did not configure the tap of vm {vm_id} (description "
                    f"vm{vm_id}-if0-...) within {TAP_TIMEOUT:.0f}s: see `ifconfig tap` and "
                    "/var/log/daemon; the guest cannot reach the HTTP server without it"
                )
            state.check_cancelled()
            state.sleep(0.2)

    def _doas_console(self, state: State, drv, name: str, log: Path) -> SerialConsole:  # type: ignore[no-untyped-def]
        """`doas -n vmctl console NAME` on a pty of ours: root owns the VM's tty."""
        master, slave = os.openpty()
        try:
            self.console_proc = subprocess.Popen(
                drv.console_argv(name),
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=drv.env,
                start_new_session=True,
            )
        except OSError as exc:
            os.close(master)
            raise PackwrapError(f"cannot run {drv.console_argv(name)[0]}: {exc.strerror}") from None
        finally:
            os.close(slave)
        state.ui.message(f"Console through: {' '.join(drv.console_argv(name))}")
        console = SerialConsole(master, log, ui=state.ui, cu_escape=True)
        # cu's own "Connected to /dev/ttypN (speed 115200)" is not the guest's first
        # output (boot_wait counts from that, see step_console_wait).
        with contextlib.suppress(ConsoleError):
            console.expect(CU_BANNER, CU_BANNER_TIMEOUT, state.cancel_event)
        state.data["console_guest_from"] = console.mark()
        return console

    def _end_console(self) -> None:
        if self.console is not None:
            self.console.close()  # closes our pty end: cu sees a hangup and exits
            self.console = None
        proc, self.console_proc = self.console_proc, None
        if proc is not None:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):  # root's cu under real doas: not ours
                    proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)

    def _close_previous_console(self, state: State) -> None:
        old = state.data.pop("console", None)
        if old is not None:
            old.close()

    def cleanup(self, state: State) -> None:
        if self.console is not None and state.data.get("console") is self.console:
            state.data.pop("console", None)
        self._end_console()
        if not self.started:
            return
        name = config_of(state).vm_name
        drv = driver(state)
        row = drv.find(name)
        if row is None or not row.running:
            return
        state.ui.say(f"Stopping VM {name} (id {row.id})")
        drv.stop(name, force=True, wait=True)
