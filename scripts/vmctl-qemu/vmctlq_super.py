"""Supervisor of one stand-in VM: the "vm process" vmd forks per VM.

Runs QEMU (paused, QMP on its stdio), finds the serial pty with query-chardev, keeps
the pty slave open so nothing the guest prints before the builder attaches is lost
(a pty that nobody holds open makes QEMU drop output; vmd's pty keeps it), records the
VM as running, resumes it, then waits for QEMU to exit and forgets the VM (vmd removes
instances that stop). SIGUSR1 = graceful stop (ACPI power button, then a kill after
$VMCTL_QEMU_STOP_GRACE seconds); SIGTERM = forced stop.

usage: vmctlq_super.py STATE_DIR ID
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vmctlq_common import locked, read_json, write_json  # noqa: E402
from vmctlq_dhcp import FilterSockets, guest_to_slirp, slirp_to_guest  # noqa: E402

requests: list[str] = []


def main(d: Path, vm_id: int) -> int:
    path = d / "vms" / f"{vm_id}.json"
    rec = read_json(path)
    if rec is None:
        return 1
    signal.signal(signal.SIGUSR1, lambda *_: requests.append("graceful"))
    signal.signal(signal.SIGTERM, lambda *_: requests.append("force"))
    signal.signal(signal.SIGINT, lambda *_: requests.append("force"))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    remap = {int(k): v for k, v in (rec.get("remap") or {}).items()}
    prefixes = ("", "g") if remap else ("",)
    filters = [FilterSockets(rec["filter_dir"], i, prefixes) for i in range(rec.get("nlocal", 0))]
    proc = subprocess.Popen(
        rec["qemu_argv"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr
    )
    # Every pid ever started, for test teardowns that must kill leftovers by pid.
    with open(d / "pids", "a") as fh:
        fh.write(f"{proc.pid} {os.getpid()}\n")
    slave = None
    reason = "exited"
    try:
        for f, (_net, host, _guest) in zip(filters, rec.get("local", []), strict=True):
            transforms = [slirp_to_guest(host, remap), guest_to_slirp(host, remap)]
            f.start(transforms[: len(prefixes)], alive=lambda: proc.poll() is None)
        for address, port, loop in rec.get("publish", []):
            publish(address, port, loop)
        qmp = Qmp(proc)
        qmp.command("qmp_capabilities")
        chardevs = qmp.command("query-chardev")
        pty = next(c["filename"][4:] for c in chardevs if c["label"] == "ser0")
        slave = os.open(pty, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(slave)
        with locked(d):
            cur = read_json(path) or rec
            cur.update(state="running", tty=pty, qemu_pid=proc.pid, supervisor_pid=os.getpid())
            write_json(path, cur)
        qmp.command("cont")
        grace_end = None
        while proc.poll() is None:
            if "force" in requests:
                reason = "forced"
                proc.kill()
                break
            if "graceful" in requests and grace_end is None:
                grace_end = time.monotonic() + float(os.environ.get("VMCTL_QEMU_STOP_GRACE", "30"))
                with locked(d):
                    cur = read_json(path) or rec
                    cur["state"] = "stopping"
                    write_json(path, cur)
                qmp.send("system_powerdown")
            if grace_end is not None and time.monotonic() > grace_end:
                reason = "grace period over"
                proc.kill()
                break
            qmp.poll(0.2)
    except Exception as exc:  # report why the start failed to `vmctl start`
        reason = f"{type(exc).__name__}: {exc}"
        with locked(d):
            cur = read_json(path) or rec
            if cur.get("state") == "starting":
                cur.update(state="failed", error=reason)
                write_json(path, cur)
        if proc.poll() is None:
            proc.kill()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if slave is not None:
            os.close(slave)
        shutil.rmtree(rec["filter_dir"], ignore_errors=True)
        with locked(d):
            cur = read_json(path)
            if cur and cur.get("state") != "failed":
                path.unlink(missing_ok=True)
        print(f"vm {vm_id}: qemu exit {proc.returncode} ({reason})", file=sys.stderr)
    return 0


def publish(address: str, port: int, loop: int) -> None:
    """Relay connections to address:port (the guest's vmd address, local in a network
    namespace) to QEMU's hostfwd on 127.0.0.1:loop; threads end with the supervisor."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port))
    listener.listen(16)

    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def serve() -> None:
        while True:
            client, _ = listener.accept()
            try:
                upstream = socket.create_connection(("127.0.0.1", loop), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, name=f"publish-{port}", daemon=True).start()


class Qmp:
    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.fd = proc.stdout.fileno()
        self.buf = b""
        self.events: list[dict] = []
        self._read_message(30)  # greeting

    def send(self, name: str) -> None:
        self.proc.stdin.write(json.dumps({"execute": name}).encode() + b"\n")
        self.proc.stdin.flush()

    def command(self, name: str):
        self.send(name)
        while True:
            msg = self._read_message(30)
            if "event" in msg:
                self.events.append(msg)
                continue
            if "error" in msg:
                raise RuntimeError(f"QMP {name}: {msg['error'].get('desc')}")
            return msg.get("return")

    def poll(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            data = os.read(self.fd, 65536)
            if data:
                self.buf += data
            else:
                time.sleep(timeout)
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            if line.startswith(b"{"):
                self.events.append(json.loads(line))

    def _read_message(self, timeout: float) -> dict:
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from QEMU's monitor")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                data = os.read(self.fd, 65536)
                if not data:
                    raise RuntimeError(f"QEMU exited (rc {self.proc.wait()}); see its log")
                self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        if not line.startswith(b"{"):  # QEMU's own notices ("char device redirected to ...")
            return self._read_message(timeout)
        return json.loads(line)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2])))
