#!/usr/bin/env python3
"""Time `packwrap lint` with and without a file, and `packwrap validate`, in a fresh
`packwrap new openbsd-76` project: median of N runs, interleaved.

`--base DIR` also times another source tree (e.g. `git archive <rev> | tar -x -C DIR`)
through the same interpreter, its packwrap first on PYTHONPATH, so a change is compared
with its base in one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = str(REPO / ".venv" / "bin" / "python")
COMMANDS = {
    "lint": ["lint"],
    "lint FILE": ["lint", "http/install.conf.pkr.in"],
    "validate": ["validate", "."],
}


def run(tree: Path, args: list[str], cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    argv = [PY, "-c", "from packwrap.cli import entry; entry()", *args]
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} in {tree}: exit {done.returncode}: {done.stderr!r}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--base", type=Path, help="another source tree to compare with")
    opts = parser.parse_args()
    trees = {"now": REPO, **({"base": opts.base.resolve()} if opts.base else {})}
    for tree in trees.values():  # as installed: byte-compiled (PYTHONDONTWRITEBYTECODE)
        subprocess.run([PY, "-m", "compileall", "-q", str(tree / "packwrap")], check=True)
    with tempfile.TemporaryDirectory(prefix="lint-bench-") as tmp:
        project = Path(tmp) / "p"
        new = ["new", "openbsd-76", str(project), "--root-password", "bench"]
        run(REPO, new, Path(tmp))
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(opts.runs):
            for label, args in COMMANDS.items():
                for name, tree in trees.items():
                    times.setdefault((name, label), []).append(run(tree, args, project))
    print(f"load average {os.getloadavg()[0]:.1f}, {opts.runs} runs, median:")
    for label in COMMANDS:
        row = "  ".join(
            f"{name} {statistics.median(times[(name, label)]) * 1000:7.0f} ms" for name in trees
        )
        print(f"  packwrap {label:<10} {row}")


if __name__ == "__main__":
    main()
