"""atomic_write (packwrap/atomicfile.py), the one writer of whole files: all or nothing,
modes as asked, a secret never readable by others, not even half-way."""

from __future__ import annotations

import os
import stat

import pytest

from packwrap import atomicfile
from packwrap.atomicfile import PRIVATE, atomic_write, with_umask


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_writes_text_and_bytes_and_makes_the_directory(tmp_path):
    atomic_write(tmp_path / "a" / "b" / "t.txt", "é\n")
    atomic_write(tmp_path / "bin", b"\x00\xff")
    assert (tmp_path / "a" / "b" / "t.txt").read_bytes() == "é\n".encode()
    assert (tmp_path / "bin").read_bytes() == b"\x00\xff"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "bin"]  # no temporary left


def test_the_default_mode_is_what_open_gives(tmp_path):
    mask = os.umask(0o027)
    try:
        atomic_write(tmp_path / "f", "x")
        assert _mode(tmp_path / "f") == 0o640
        assert with_umask(0o666) == 0o640
    finally:
        os.umask(mask)


def test_the_umask_is_read_without_changing_it():
    mask = os.umask(0o022)
    os.umask(mask)
    assert atomicfile._umask() == mask


def test_an_explicit_mode_is_exact(tmp_path):
    mask = os.umask(0)
    try:
        atomic_write(tmp_path / "secret", "pw", mode=PRIVATE)
        atomic_write(tmp_path / "public", "x", mode=0o644)
    finally:
        os.umask(mask)
    assert _mode(tmp_path / "secret") == 0o600
    assert _mode(tmp_path / "public") == 0o644


def test_keep_mode_keeps_a_users_file_mode(tmp_path):
    path = tmp_path / "vars.pkrvars.hcl"
    path.write_text("old")
    path.chmod(0o600)
    atomic_write(path, "new", mode=0o644, keep_mode=True)
    assert (path.read_text(), _mode(path)) == ("new", 0o600)
    atomic_write(tmp_path / "fresh", "x", mode=0o644, keep_mode=True)
    assert _mode(tmp_path / "fresh") == 0o644


def test_a_secret_is_private_while_it_is_written(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def replace(src, dst):
        seen.append(_mode(src))
        real_replace(src, dst)

    monkeypatch.setattr(atomicfile.os, "replace", replace)
    mask = os.umask(0)
    try:
        atomic_write(tmp_path / "s", "pw", mode=PRIVATE)
    finally:
        os.umask(mask)
    assert seen == [0o600]


def test_a_failure_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "f"
    path.write_text("old")

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomicfile.os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        atomic_write(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_bad_data_writes_nothing(tmp_path):
    with pytest.raises(TypeError):
        atomic_write(tmp_path / "f", 42)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_renames_when_whole_and_removes_on_failure(tmp_path):
    from packwrap.atomicfile import atomic_output

    target = tmp_path / "out" / "disk.tar.gz"
    with atomic_output(target, mode=0o640) as partial:
        assert partial.parent == target.parent and not target.exists()
        partial.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    assert target.stat().st_mode & 0o777 == 0o640
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as partial:
        partial.write_bytes(b"half")
        raise KeyboardInterrupt  # Ctrl-C mid-write: the old file stays, no temporary
    assert target.read_bytes() == b"whole"
    assert [p.name for p in target.parent.iterdir()] == ["disk.tar.gz"]
