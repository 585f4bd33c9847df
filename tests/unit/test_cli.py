"""The CLI shell: version, help, usage errors, and that --help stays fast."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from packwrap import __version__
from packwrap.cli import main


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"packwrap {__version__}"


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("blueprints", "new", "validate", "lint", "convert", "fetch-iso", "build"):
        assert command in out


def test_unknown_option_is_a_usage_error(capsys):
    assert main(["new", "--no-such-option"]) == 2
    err = capsys.readouterr().err
    assert "No such option: --no-such-option" in err
    assert "Traceback" not in err


def test_help_is_fast():
    """Issue 2: `packwrap --help` <= 0.2 s median (heavy imports are lazy)."""
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "packwrap", "--help"], capture_output=True, check=True
        )
        times.append(time.perf_counter() - t0)
    assert statistics.median(times) < 0.4  # generous for a loaded CI box; bench/ has the figure


def test_help_imports_no_heavy_module():
    code = (
        "import sys; from packwrap.cli import app; "
        "heavy = [m for m in ('hcl2', 'lark', 'requests', 'paramiko', 'cryptography', 'jinja2') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
