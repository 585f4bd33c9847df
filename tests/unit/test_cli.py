"""The CLI shell: version, help, usage errors, and that --help stays fast."""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys

from packwrap import __version__
from packwrap.cli import main
from tests.packwrap_runner import run_cli


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
    """Issue 2: `packwrap --help` is fast (heavy imports are lazy). Measured as the child's
    CPU time (user + sys), which a loaded CI box does not inflate the way it does wall
    time; bench/startup_bench.py has the wall-clock figure."""
    times = []
    for _ in range(5):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert run_cli("--help").returncode == 0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    assert statistics.median(times) < 0.3, times


def test_help_imports_no_heavy_module():
    code = (
        "import sys; from packwrap.cli import app; "
        "heavy = [m for m in ('hcl2', 'lark', 'requests', 'paramiko', 'cryptography', 'jinja2') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_imports_no_pydantic():
    """typer >= 0.29 imports pydantic on every run (+60-100 ms): pyproject pins it below."""
    code = (
        "import sys; from packwrap.cli import main; main(['--version']); "
        "print('pydantic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "False"


def _exit_check(setup: str) -> str:
    code = "\n".join(
        [
            "import threading, tempfile",
            setup,
            "from packwrap import cli",
            "print(cli._nothing_left_at_exit())",
        ]
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


def test_quick_exit_only_when_nothing_is_left():
    assert _exit_check("") == "True"
    # A non-daemon thread still running: the normal exit must wait for it.
    thread = (
        "ev = threading.Event(); t = threading.Thread(target=ev.wait); t.start(); "
        "threading.Timer(2, ev.set).start()"
    )
    assert _exit_check(thread) == "False"
    # A live TemporaryDirectory: its finalizer removes the directory at a normal exit.
    assert _exit_check("keep = tempfile.TemporaryDirectory()") == "False"


def test_console_entry_passes_the_exit_code_and_flushes_a_pipe(tmp_path):
    ok = run_cli("--version")
    assert ok.returncode == 0 and ok.stdout == f"packwrap {__version__}\n"
    missing = tmp_path / "missing.pkr.hcl"
    bad = run_cli("validate", str(missing))
    assert bad.returncode != 0 and bad.stderr.startswith("Error:") and str(missing) in bad.stderr
    # Much output into a pipe read to the end: nothing lost to the quick exit.
    many = run_cli("fetch-iso", "--help")
    assert many.returncode == 0 and many.stdout.rstrip().endswith("Show this message and exit.")
