#!/usr/bin/env python3
"""Time `packwrap --help` (cold-ish process start), median of N runs.

Target (issue 2): <= 0.2 s median on these machines. Compared in the same run with
`python -c pass` (the floor: interpreter start) and `packer --help` (the alternative).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 20


def median_seconds(argv: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    py = str(REPO / ".venv" / "bin" / "python")
    rows = [
        ("python -c pass", [py, "-c", "pass"]),
        ("packwrap --help", [str(REPO / ".venv" / "bin" / "packwrap"), "--help"]),
        ("packwrap --version", [str(REPO / ".venv" / "bin" / "packwrap"), "--version"]),
    ]
    if shutil.which("packer"):
        rows.append(("packer --help", ["packer", "--help"]))
    for label, argv in rows:
        print(f"{label:<22} median {median_seconds(argv) * 1000:7.1f} ms  ({RUNS} runs)")


if __name__ == "__main__":
    main()
