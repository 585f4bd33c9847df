"""Suite-wide settings: hypothesis profiles, the tier guard, shared fixtures."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# A test that starts qemu-system-* must be marked e2e (tests/qemu_guard.py).
pytest_plugins = ["tests.qemu_guard"]

# CI runs a smaller example count; the full fuzz run is `HYPOTHESIS_PROFILE=full scripts/test`.
settings.register_profile("ci", max_examples=200, deadline=None)
settings.register_profile(
    "full", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
