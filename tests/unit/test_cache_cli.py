"""`packwrap cache list|prune` over a real store in the test's own XDG cache."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from packwrap.cli import main
from packwrap.installcache.store import Store, installs_root


def stored(tmp_path: Path, *keys: str) -> Store:
    store = Store(installs_root())
    src = tmp_path / "disk"
    src.write_bytes(os.urandom(1 << 20))
    for c in keys:
        meta = {"release": "7.6", "build": f"qemu.{c}", "disk_format": "raw"}
        store.put(c * 64, src, meta, {"v": c})
    return store


def test_list_shows_key_release_size_age_and_last_use(tmp_path, capsys):
    store = stored(tmp_path, "a", "b")
    old = time.time() - 3 * 86400
    os.utime(store.root / ("a" * 64) / "used", (old, old))
    assert main(["cache", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["KEY", "RELEASE", "SIZE", "AGE", "LAST", "USE", "BUILD"]
    assert lines[1].split()[:3] == ["a" * 12, "7.6", "1.0M"]
    assert lines[1].split()[4:] == ["3d", "ago", "qemu.a"]  # least recently used first
    assert lines[2].split()[0] == "b" * 12
    assert lines[3].startswith("2 cached installs, ")


def test_list_of_an_empty_cache(capsys):
    assert main(["cache", "list"]) == 0
    assert capsys.readouterr().out.startswith("No cached installs in ")


def test_prune_older_than_then_max_size(tmp_path, capsys):
    store = stored(tmp_path, "a", "b", "c")
    now = time.time()
    for c, days in (("a", 40), ("b", 2), ("c", 1)):
        os.utime(store.root / (c * 64) / "used", (now - days * 86400,) * 2)
    assert main(["cache", "prune", "--older-than", "30d"]) == 0
    assert "Removed " + "a" * 12 in capsys.readouterr().out
    assert main(["cache", "prune", "--max-size", "1500K"]) == 0
    out = capsys.readouterr().out
    assert "Removed " + "b" * 12 in out and "1 removed, 1 left" in out
    assert [e.key[0] for e in store.entries()] == ["c"]


def test_bad_values_are_one_line_errors(capsys):
    assert main(["cache", "prune", "--older-than", "soon"]) == 1
    assert capsys.readouterr().err.strip().startswith("Error: invalid --older-than 'soon'")
    assert main(["cache", "prune", "--max-size", "lots"]) == 1
    assert capsys.readouterr().err.strip() == (
        "Error: --max-size 'lots': expected a size like 1500M or 2G (a bare number is MiB)"
    )


def test_show_prints_the_key_document_of_one_entry(tmp_path, capsys):
    stored(tmp_path, "a", "b")
    assert main(["cache", "show", "aaaa"]) == 0
    assert json.loads(capsys.readouterr().out) == {"v": "a"}
    assert main(["cache", "show", "c"]) == 1
    assert "no cached install with a key starting 'c'" in capsys.readouterr().err
