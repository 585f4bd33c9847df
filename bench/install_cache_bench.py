#!/usr/bin/env python3
"""Install cache benchmark on the QEMU test fixture (not a test: figures for bench/README.md).

usage: .venv/bin/python bench/install_cache_bench.py [--runs N] [--json FILE]

Each run, in a fresh XDG cache: a `scripts/demo --provision` project (`packwrap new
openbsd-76 --builder qemu --var communicator=ssh`, the demo's shell and file
provisioners, the fixture kernel for the provisioning boot), then
  first    `packwrap build` (a full install, stored in the install cache)
  change   one provisioner line changes (the shell provisioner's text)
  second   `packwrap build -force` (the install is skipped: a cached install)
Reported: wall times, second/first (target <= 0.65, in the same run), and from the
build logs' step timings how long the install took in the first build (the steps the
second build skips: install QEMU run, boot command, wait for power-off), what storing
the entry cost, and what the hit cost (lookup with checksum, overlay, flattening).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from demo_provisioning import main as add_provisioners  # noqa: E402

from packwrap.durations import parse_duration  # noqa: E402
from tests.fixture_support import fixture_dir  # noqa: E402

PY = sys.executable
INSTALLED_ARGS = "console=ttyS0,115200 quiet loglevel=1 panic=-1 pwfixture.mode=installed"
INSTALL_STEPS = ("start QEMU", "installer drift guard", "boot command", "wait for power-off")
STEP = re.compile(r"step '([^']+)': done in (\S+)")


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{proc.stdout}\n{proc.stderr}")
    return took


def step_times(project: Path) -> dict[str, float]:
    log = (project / ".packwrap" / "logs" / "packwrap-qemu.openbsd-76.log").read_text()
    times: dict[str, float] = {}
    for name, took in STEP.findall(log):
        times[name] = times.get(name, 0.0) + parse_duration(took)
    return times


def project_in(tmp: Path, media: Path, env: dict[str, str]) -> Path:
    project = tmp / "openbsd-76"
    argv = [
        PY, "-m", "packwrap", "new", "openbsd-76", str(project), "--builder", "qemu",
        "--root-password", "packwrap-demo", "--var", "hostname=demo",
        "--var", f"iso_url={media / 'install76.iso'}", "--var", "iso_checksum=none",
        "--var", "hermetic_network=true", "--var", "disk_size=2G", "--var", "memory=256",
        "--var", "shutdown_timeout=2m", "--var", "communicator=ssh",
    ]  # fmt: skip
    run(argv, tmp, env)
    extra = "\n".join(
        [
            f'  provision_kernel      = "{media}/bsd.rd"',
            f'  provision_initrd      = "{media}/bsd.rd.initrd"',
            f'  provision_kernel_args = "{INSTALLED_ARGS}"',
        ]
    )
    add_provisioners(project, "qemu", extra)
    return project


def one_run(media: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="pw-cache-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "xdg"), "PACKWRAP_NO_COLOR": "1"}
        env.pop("PACKWRAP_CACHE_DIR", None)
        project = project_in(tmp, media, env)
        build = [PY, "-m", "packwrap", "build", "-only=qemu.openbsd-76", "-force", "."]
        first = run(build, project, env)
        t1 = step_times(project)
        template = project / "openbsd-76.pkr.hcl"
        template.write_text(template.read_text().replace("provisioned by", "changed, then"))
        second = run(build, project, env)
        t2 = step_times(project)
        return {
            "first_s": first,
            "second_s": second,
            "ratio": second / first,
            "install_s": sum(t1.get(s, 0.0) for s in INSTALL_STEPS),
            "store_s": t1.get("store install in cache", 0.0),
            "hit_lookup_s": t2.get("install cache", 0.0),
            "hit_disk_s": t2.get("create disk", 0.0),
            "hit_flatten_s": t2.get("convert disk", 0.0),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    media = Path(fixture_dir())
    runs = []
    for i in range(args.runs):
        result = one_run(media)
        runs.append(result)
        figures = ", ".join(f"{k} {v:.2f}" for k, v in result.items())
        print(f"run {i + 1}: {figures}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    for key in runs[0]:
        values = [r[key] for r in runs]
        print(f"{key:>14}: median {statistics.median(values):.2f} "
              f"(min {min(values):.2f}, max {max(values):.2f})")  # fmt: skip
    worst = max(r["ratio"] for r in runs)
    print(f"second/first <= 0.65 in every run: {'yes' if worst <= 0.65 else 'NO'} "
          f"(worst {worst:.2f})")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2) + "\n")


if __name__ == "__main__":
    main()
