"""Shared e2e fixtures: the fixture media, packwrap run as a user runs it, and clean-up.

Every process a test starts (packwrap, and each QEMU pid packwrap reports) is killed by
its pid at teardown, even when the test fails (tests/packwrap_runner.py runs them).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.packwrap_runner import REPO, Packwrap, Run, pid_alive

__all__ = ["REPO", "TOOLS", "Packwrap", "Run", "pid_alive", "new_project"]

TOOLS = ("qemu-system-x86_64", "qemu-img", "busybox")


@pytest.fixture(scope="session")
def fixture_media() -> Path:
    """The bsd.rd stand-in (kernel, initrd, ISO), built once and cached."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    from tests.fixture_support import fixture_dir

    return Path(fixture_dir())


@pytest.fixture
def packwrap(tmp_path: Path):
    pw = Packwrap(tmp_path)
    try:
        yield pw
    finally:
        pw.cleanup()


def new_project(
    pw: Packwrap,
    parent: Path,
    media: Path,
    *variables: str,
    name: str = "img",
    root_password: str | None = None,
    blueprint: str = "openbsd-76",
) -> Path:
    """`packwrap new openbsd-76 --builder qemu` on the fixture ISO, hermetic, small and fast
    (the disk is sparse: 2G satisfies the blueprint's disklabel at no cost)."""
    project = parent / name
    password = ["--root-password", root_password] if root_password else ["--no-root-password"]
    args = [
        "new", blueprint, str(project), "--builder", "qemu", *password,
        "--var", f"iso_url={media / 'install76.iso'}", "--var", "iso_checksum=none",
        "--var", "hermetic_network=true", "--var", "disk_size=2G", "--var", "memory=256",
        "--var", "qemu_accelerator=tcg", "--var", "shutdown_timeout=60s",
        "--var", "boot_expect_timeout=120s",
    ]  # fmt: skip
    for v in variables:
        args += ["--var", v]
    result = pw.run(*args, cwd=parent)
    assert result.rc == 0, result.out
    return project
