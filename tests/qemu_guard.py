"""Tests stay in the tier their marker says (a pytest plugin, loaded by tests/conftest.py).

- A test that starts qemu-system-* must be marked `e2e`. For every other test, each
  qemu-system-* on PATH is shadowed by a shim that logs its arguments and then execs the
  real binary (same pid, same behaviour); a VM start in the log (any run but a help or
  version query) fails the test at teardown. The shim is found through PATH, so a QEMU
  that packwrap or the vmctl stand-in starts in a child process is caught too.
- tests/unit holds no `e2e` test: collection stops with the offending test ids.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

SHIMS_ENV = "PACKWRAP_TEST_QEMU_SHIMS"  # the shim directory (an inner pytest skips it)
LOG_ENV = "PACKWRAP_TEST_QEMU_LOG"  # where the shims append one line per run
_QUERIES = {"-version", "--version", "-help", "--help", "-h", "help", "?"}


def is_vm_start(args: list[str]) -> bool:
    """A run of qemu-system-* that starts a machine: not `-version`, `-cpu help`, ..."""
    return not any(a in _QUERIES or a.endswith(("=help", ",help")) for a in args)


def _real_qemus() -> dict[str, str]:
    """qemu-system-* name -> the first executable of that name on PATH (not our shims)."""
    ours = os.environ.get(SHIMS_ENV)
    found: dict[str, str] = {}
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not d or d == ours:
            continue
        try:
            names = sorted(n for n in os.listdir(d) if n.startswith("qemu-system-"))
        except OSError:
            continue
        for name in names:
            path = os.path.join(d, name)
            if name not in found and os.path.isfile(path) and os.access(path, os.X_OK):
                found[name] = path
    return found


@pytest.fixture(scope="session")
def _qemu_shims(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    real = _real_qemus()
    if not real:
        return None  # no QEMU: nothing can start it (and `which` still finds none)
    shim_dir = tmp_path_factory.mktemp("qemu-shims")
    for name, path in real.items():
        shim = shim_dir / name
        shim.write_text(
            "#!/bin/sh\n"
            f'[ -z "${LOG_ENV}" ] || printf "%s\\n" "$*" >> "${LOG_ENV}"\n'
            f'exec {shlex.quote(path)} "$@"\n'
        )
        shim.chmod(0o755)
    return shim_dir


@pytest.fixture(autouse=True)
def _qemu_only_in_e2e(request: pytest.FixtureRequest, _qemu_shims: Path | None) -> Iterator[None]:
    if _qemu_shims is None or request.node.get_closest_marker("e2e"):
        yield
        return
    log = _qemu_shims / f"runs-{os.getpid()}.log"  # one per xdist worker, emptied per test
    log.write_text("")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{_qemu_shims}{os.pathsep}{os.environ.get('PATH', '')}")
        mp.setenv(SHIMS_ENV, str(_qemu_shims))
        mp.setenv(LOG_ENV, str(log))
        yield
    starts = [ln for ln in log.read_text().splitlines() if is_vm_start(ln.split())]
    if starts:
        pytest.fail(
            f"{request.node.nodeid} started QEMU ({starts[0]}) but is not marked e2e: "
            "mark it @pytest.mark.e2e (and keep it out of tests/unit)",
            pytrace=False,
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unit = config.rootpath / "tests" / "unit"
    misplaced = [i.nodeid for i in items if i.get_closest_marker("e2e") and unit in i.path.parents]
    if misplaced:
        raise pytest.UsageError(
            "e2e tests in tests/unit (move them to tests/e2e): " + ", ".join(misplaced)
        )
