"""Docstrings and comments cite only documents that are in the repository.

A reader of the code has the repository, not the notes it was written from, so an `.md`
file named in a Python file must be a file here (by path or by name). The one exception
is OpenBSD's own per-arch `install.md` (distrib/<arch>/.../install.md), an upstream
source cited with its revision like install.sub.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CITED = re.compile(r"(?<![\w./-])([\w./-]+\.md)\b")
UPSTREAM = {"install.md"}  # OpenBSD's distrib/<arch>/.../install.md
THIS = "tests/unit/test_doc_citations.py"  # names the notes it keeps out


def _repo_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if (REPO / line).is_file()]


def _is_python(name: str) -> bool:
    if name.endswith(".py"):
        return True
    if not name.startswith("scripts/") or "." in Path(name).name:
        return False
    with open(REPO / name, "rb") as fh:
        first = fh.readline()
    return first.startswith(b"#!") and b"python" in first


def unresolved_citations(sources: Mapping[str, str], files: list[str]) -> list[str]:
    """`file:line: name` for each .md named in `sources` (path -> text) that is not one
    of `files`. A blueprint's README.md.j2 is the README.md a project gets."""
    docs = [f.removesuffix(".j2") for f in files if f.endswith((".md", ".md.j2"))]
    names = {Path(f).name for f in docs}
    bad = []
    for name, text in sorted(sources.items()):
        for lineno, line in enumerate(text.splitlines(), 1):
            for cited in CITED.findall(line):
                cited = cited.lstrip("./")
                if cited not in docs and cited not in names and cited not in UPSTREAM:
                    bad.append(f"{name}:{lineno}: {cited}")
    return bad


def test_python_files_cite_only_documents_in_the_repository():
    files = _repo_files()
    sources = {
        f: (REPO / f).read_text(encoding="utf-8", errors="replace")
        for f in files
        if f != THIS and _is_python(f)
    }
    assert len(sources) > 100  # the scan really read the code
    assert unresolved_citations(sources, files) == []


def test_a_citation_of_notes_outside_the_repository_is_caught():
    sources = {
        "packwrap/a.py": '"""A rule (openbsd-install.md §1.2); see docs/architecture.md."""\n',
        "tests/b.py": "# the project README.md and blueprints/openbsd/project/README.md\n",
    }
    files = ["docs/architecture.md", "README.md", "blueprints/openbsd/project/README.md.j2"]
    assert unresolved_citations(sources, files) == ["packwrap/a.py:1: openbsd-install.md"]
