"""Suite-wide settings: hypothesis profiles, the tier guard, shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:
    from packwrap.build.state import State
    from tests.state_support import RecordingUi

# A test that starts qemu-system-* must be marked e2e (tests/qemu_guard.py); `fake`, the
# vmm step tests' fake vmctl (tests/vmm_support.py).
pytest_plugins = ["tests.qemu_guard", "tests.vmm_support"]

# CI runs a smaller example count; the full fuzz run is `HYPOTHESIS_PROFILE=full scripts/test`.
settings.register_profile("ci", max_examples=200, deadline=None)
settings.register_profile(
    "full", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tiers first: VM-booting tests (faults, then e2e) start at once and the quick
    unit tests fill the workers' gaps at the end, so `-n N --dist worksteal` ends without
    a serial tail of 30-second builds. A stable sort: the order within a tier stays."""

    def tier(item: pytest.Item) -> int:
        if not item.get_closest_marker("e2e"):
            return 2
        return 0 if "faults" in item.path.parts else 1

    items.sort(key=tier)


@pytest.fixture(autouse=True)
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """Every test (and each packwrap it starts) gets its own XDG cache: no test reads or
    fills the user's install cache, and no two tests hit each other's entries."""
    monkeypatch.delenv("PACKWRAP_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    # and no screen: headless = false would open a QEMU window (plugin/packwrap_qemu/display.py)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


@pytest.fixture
def qemu_project(tmp_path: Path) -> Path:
    """A project as `packwrap new openbsd-76 --builder qemu` makes it (in-process)."""
    from packwrap.cli import main

    target = tmp_path / "p"
    assert main(["new", "openbsd-76", str(target), "--builder", "qemu", "--no-root-password"]) == 0
    return target


@pytest.fixture
def ui() -> RecordingUi:
    """A build UI that records what steps print (tests/state_support.py)."""
    from tests.state_support import RecordingUi

    return RecordingUi()


@pytest.fixture
def state(ui: RecordingUi, tmp_path: Path) -> State:
    """A qemu build's state, empty config, template directory tmp_path, printing to `ui`;
    tests/state_support.make_state gives one with a particular config."""
    from tests.state_support import make_state

    return make_state(ui=ui, template_dir=tmp_path)
