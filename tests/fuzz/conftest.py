"""Fuzz suite: print (and optionally record) how many examples each target ran.

`PACKWRAP_FUZZ_COUNTS=path.json` writes the per-target counts for the README table.
"""

from __future__ import annotations

import json
import os

from tests.fuzz._support import COUNTS


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if not COUNTS:
        return
    terminalreporter.write_sep("-", "fuzz examples run per target")
    for target, n in sorted(COUNTS.items()):
        terminalreporter.write_line(f"{target:32} {n:7}")
    terminalreporter.write_line(f"{'total':32} {sum(COUNTS.values()):7}")
    out = os.environ.get("PACKWRAP_FUZZ_COUNTS")
    if out:
        with open(out, "w") as fh:
            json.dump(dict(sorted(COUNTS.items())), fh, indent=1)
