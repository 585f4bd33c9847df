#!/usr/bin/env python3
"""Bare boot -> power-off time of the packwrap fixture, with no builder.

usage: bench/bare_boot.py [-n RUNS] [--iso] [--json]

QEMU (TCG) boots the fixture paused, the pty serial is found via QMP, a
loopback HTTP server serves install.conf and the fixture's sets, and this
script types the same answers a build would ('A', then the response file
URL; on the ISO path also 'set tty com0' and 'boot' at boot>). Timed from
QMP `cont` to QEMU's exit after the installer's reboot. Prints each run and
the median: the floor any builder on this fixture can reach.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixture_support import (  # noqa: E402
    QemuGuest,
    autoinstall,
    create_disk,
    docroot,
    fixture_dir,
)

# The same answers as the default blueprint's install.conf, minus what the
# fixture does not need; sets from the fixture's signed mirror over http.
INSTALL_CONF = """\
System hostname = bench
Password for root account = *************
Public ssh key for root account = ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchBenchBench bench
Default IPv4 route = none
Allow root ssh login = prohibit-password
Location of sets = http
HTTP Server = 10.0.2.100
Set name(s) = -x* -game*
"""


def one_run(work: Path, iso: bool) -> dict:
    fx = fixture_dir()
    files = {"install.conf": INSTALL_CONF}
    for p in (fx / "mirror").rglob("*"):
        if p.is_file():
            files[str(p.relative_to(fx / "mirror"))] = p.read_bytes()
    disk = create_disk(work / "disk.qcow2", "1G", "qcow2")
    kw = {"iso": str(fx / "install76.iso")} if iso else {"kernel": True}
    with (
        docroot(files) as (_, srv),
        QemuGuest(work, disk, disk_format="qcow2", http_port=srv.port, **kw) as g,
    ):
        if iso:
            g.answer(r"boot> ", "set tty com0", 120)
            g.answer(r"boot> ", "boot")
        m = g.expect(r"\(I\)nstall, \(U\)pgrade, \(A\)utoinstall or \(S\)hell\? ", 120)
        t_prompt = time.monotonic()
        g._pos = m.start()
        autoinstall(g)
        rc = g.wait_exit(120)
        if rc != 0 or g.shutdown_reasons() != ["guest-reset"]:
            raise SystemExit(f"install failed (rc={rc}, {g.shutdown_reasons()}):\n{g.tail()}")
        return {
            "boot_to_prompt": round(t_prompt - g.t_cont, 2),
            "boot_to_poweroff": round(g.t_exit - g.t_cont, 2),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--runs", type=int, default=5)
    ap.add_argument("--iso", action="store_true", help="boot install76.iso instead of bsd.rd")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()
    fixture_dir()  # build outside the timed runs
    runs = []
    for i in range(a.runs):
        with tempfile.TemporaryDirectory(prefix="pw-bare-") as tmp:
            r = one_run(Path(tmp), a.iso)
        runs.append(r)
        if not a.json:
            print(
                f"run {i + 1}: boot->prompt {r['boot_to_prompt']:.2f}s, "
                f"boot->poweroff {r['boot_to_poweroff']:.2f}s",
                flush=True,
            )
    med = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
    if a.json:
        print(json.dumps({"path": "iso" if a.iso else "kernel", "runs": runs, "median": med}))
    else:
        print(
            f"median of {len(runs)} ({'iso' if a.iso else 'bsd.rd'}): boot->prompt "
            f"{med['boot_to_prompt']:.2f}s, boot->poweroff {med['boot_to_poweroff']:.2f}s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
