"""The tier guard (tests/qemu_guard.py) fails what it should, and only that."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.qemu_guard import SHIMS_ENV, is_vm_start

REPO = Path(__file__).resolve().parents[2]

INNER = """
import subprocess
import pytest

def run_qemu(*args):
    subprocess.run(["qemu-system-x86_64", *args], capture_output=True, timeout=30)

def test_unmarked_starts_qemu():
    run_qemu("-no-such-option")  # exits at once, but it is a start, not a query

def test_unmarked_asks_the_version():
    run_qemu("-version")

def test_unmarked_lists_accelerators():
    run_qemu("-accel", "help")

@pytest.mark.e2e
def test_marked_starts_qemu():
    run_qemu("-no-such-option")
"""


@pytest.mark.parametrize(
    ("args", "start"),
    [
        ("-machine none -S -qmp unix:/x.sock,server=on", True),
        ("-version", False),
        ("-accel help", False),
        ("-machine help", False),
        ("-cpu ?", False),
        ("-device virtio-net-pci,help", False),
        ("-device driver=help", False),
    ],
)
def test_what_counts_as_a_vm_start(args: str, start: bool) -> None:
    assert is_vm_start(args.split()) is start


def _inner_pytest(tmp_path: Path, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    e2e: end-to-end\n")
    env = dict(os.environ)
    env.pop("PACKWRAP_TEST_QEMU_LOG", None)  # the inner runs report to the inner guard
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-p",
            "tests.qemu_guard",
            f"--basetemp={tmp_path / 'tmp'}",
            "--rootdir",
            str(tmp_path),
            "-c",
            str(tmp_path / "pytest.ini"),
            str(tmp_path / "tests"),
        ],  # fmt: skip
        cwd=REPO,
        # Wide, so the short summary names the test whole (pytest cuts it to the width).
        env={**env, "PYTHONPATH": str(REPO), "COLUMNS": "1000"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="QEMU not installed")
def test_an_unmarked_test_that_starts_qemu_fails(tmp_path: Path) -> None:
    assert os.environ.get(SHIMS_ENV), "the guard is not active in this (unmarked) test"
    run = _inner_pytest(tmp_path, {"tests/test_inner.py": INNER})
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "4 passed, 1 error" in out, out
    errors = [ln for ln in out.splitlines() if ln.startswith("ERROR ")]
    assert len(errors) == 1 and "test_inner.py::test_unmarked_starts_qemu" in errors[0], out
    assert "started QEMU (-no-such-option) but is not marked e2e" in out, out


def test_an_e2e_test_in_tests_unit_stops_the_collection(tmp_path: Path) -> None:
    marked = "import pytest\n\n@pytest.mark.e2e\ndef test_boots():\n    pass\n"
    run = _inner_pytest(tmp_path, {"tests/unit/test_misplaced.py": marked})
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "e2e tests in tests/unit (move them to tests/e2e)" in out, out
    assert "test_misplaced.py::test_boots" in out, out
