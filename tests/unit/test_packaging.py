"""The wheel users install: blueprints (with the pinned signify keys) and entry points."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    build = pytest.importorskip("hatchling.build")
    out = tmp_path_factory.mktemp("wheel")
    cwd = os.getcwd()
    os.chdir(REPO)  # hatchling builds the project in the current directory
    try:
        name = build.build_wheel(str(out))
    finally:
        os.chdir(cwd)
    with zipfile.ZipFile(out / name) as zf:
        yield zf


def test_wheel_ships_the_blueprint_and_its_pinned_keys(wheel):
    names = set(wheel.namelist())
    root = "packwrap/_blueprints/openbsd/"
    assert root + "blueprint.toml" in names
    pinned = sorted((REPO / "blueprints/openbsd/keys").glob("openbsd-*-base.pub"))
    assert len(pinned) >= 7  # 7.5-8.1
    for path in pinned:
        key = f"{root}keys/{path.name}"
        assert key in names
        assert wheel.read(key) == path.read_bytes()
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_wheel_entry_points(wheel):
    [ep] = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(ep).decode()
    assert "packwrap = packwrap.cli:entry" in text
    assert "[packwrap.builders]" in text
    assert "openbsd-vmm" in text and "qemu" in text
