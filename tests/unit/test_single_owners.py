"""Each concern issue 19 gave one owner stays in that one module: the secret placeholder
(masking.py), writing by temporary file and rename (atomicfile.py), HCL's literal-`${`
marks (template/hcl_emit.py), and running a child program while the build waits on it
(childproc.py)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "packwrap").rglob("*.py"), *(ROOT / "plugin").rglob("*.py")])


def _calls(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                names.add(f"{f.value.id}.{f.attr}")
    return names


def _strings(tree: ast.AST) -> set[str]:
    return {
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def test_only_the_masker_spells_the_placeholder():
    spelt = [p for p in SOURCES if "<sensitive>" in _strings(ast.parse(p.read_text()))]
    assert [p.relative_to(ROOT).as_posix() for p in spelt] == ["packwrap/masking.py"]


# os.replace outside atomicfile.py, each for a reason that is not "write this data".
RENAMES_NOT_WRITES = {
    "packwrap/media/cache.py",  # a verified download moved into the cache
    "packwrap/media/fetch.py",  # a hard link (or copy) of a cached file moved into place
    "packwrap/blueprint/project.py",  # a whole staged project directory moved into place
    "packwrap/media/sets.py",  # a whole staged local mirror directory moved into place
    "plugin/packwrap_qemu/step_convert_disk.py",  # qemu-img's output replaces the disk
    "packwrap/installcache/store.py",  # a whole staged cache entry directory moved into place
}


def test_only_atomicfile_writes_files_by_temporary_and_rename():
    found = set()
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        calls = _calls(tree)
        if {"os.replace", "os.rename", "tempfile.mkstemp"} & calls:
            found.add(path.relative_to(ROOT).as_posix())
    assert found - RENAMES_NOT_WRITES == {"packwrap/atomicfile.py"}


def test_only_the_hcl_writer_spells_the_literal_marks():
    spelt = [
        p.relative_to(ROOT).as_posix()
        for p in SOURCES
        if any("$${" in s or "\\u0024{" in s for s in _strings(ast.parse(p.read_text())))
    ]
    readers = {
        "packwrap/blueprint/hcl.py",  # turns the mark into HCL JSON's `$${`
        "packwrap/template/expr.py",  # the expression parser reads HCL's `$${`
        "packwrap/template/hcl_fmt.py",  # the aligner skips `$${` inside strings
    }
    assert set(spelt) - readers == {"packwrap/template/hcl_emit.py"}


# Popen under postprocess/ and build/ outside childproc.py, each for a reason that is
# not "run a program to its end while the build waits, its output to the UI".
POPEN_NOT_STREAMED_RUNS = {
    "packwrap/postprocess/archive.py",  # tar | compressor pipes into the output file
}


def _starts_a_child(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if name == "Popen":
                return True
    return False


def test_only_childproc_runs_a_streamed_child_under_postprocess_and_build():
    found = {
        p.relative_to(ROOT).as_posix()
        for d in ("postprocess", "build")
        for p in (ROOT / "packwrap" / d).rglob("*.py")
        if _starts_a_child(ast.parse(p.read_text()))
    }
    assert found == POPEN_NOT_STREAMED_RUNS, "run the child with packwrap.childproc.run_child"
    assert _starts_a_child(ast.parse("import subprocess\nsubprocess.Popen(['x'])"))
    assert _starts_a_child(ast.parse("from subprocess import Popen\nPopen(['x'])"))
