"""Write a rendered project to disk: all of it or none of it, never a user's file lost.

Everything is written into a temporary directory next to the target first; only when
every file is there is it moved into place (a rename of the whole directory when the
target does not exist yet). With --force into an existing directory, only the files the
blueprint writes are replaced, each atomically; other files are left alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from packwrap.atomicfile import PRIVATE, atomic_write, with_umask
from packwrap.blueprint.record import META_FILE
from packwrap.blueprint.render import Rendered, RenderedFile, sha256
from packwrap.errors import PackwrapError, UsageError


def check_target(target: Path, force: bool) -> None:
    """Refuse a non-empty target unless --force (checked before anything is asked)."""
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target}: exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not force:
        count = sum(1 for _ in target.iterdir())
        raise UsageError(
            f"{target}: directory is not empty ({count} entries); use --force to replace "
            "the files the blueprint writes (other files are kept)"
        )


def _conflicts(target: Path, files: list[RenderedFile]) -> None:
    for f in files:
        dest = target / f.path
        if dest.is_dir():
            raise UsageError(f"{dest}: is a directory, the blueprint writes a file there")
        for parent in dest.relative_to(target).parents:
            p = target / parent
            if parent != Path(".") and p.exists() and not p.is_dir():
                raise UsageError(f"{p}: is a file, the blueprint writes a directory there")


def write_file_atomic(path: Path, text: str, secret: bool) -> None:
    """Write one project file whole (0600 when it holds a secret)."""
    atomic_write(path, text, mode=PRIVATE if secret else None)


def write_project(target: Path, rendered: Rendered, *, force: bool) -> list[Path]:
    """Write every rendered file under `target`; returns the written paths."""
    target = Path(target)
    check_target(target, force)
    files = sorted(rendered.files, key=lambda f: (f.path == META_FILE, f.path))
    _conflicts(target, files)
    # Stage on the same file system: next to a new target, inside an existing one (so
    # `new . --force` needs no write access to the parent).
    parent = target.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    where = target if target.is_dir() else parent
    was_empty = target.is_dir() and not any(target.iterdir())
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.packwrap-new-", dir=where))
    moved: list[Path] = []
    try:
        for f in files:
            dest = staging / f.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(f.content, encoding="utf-8")
            os.chmod(dest, PRIVATE if f.secret else with_umask(0o666))
        if not target.exists():
            for d in [staging, *(p for p in staging.rglob("*") if p.is_dir())]:
                os.chmod(d, with_umask(0o777))
            os.rename(staging, target)
            return [target / f.path for f in files]
        try:
            for f in files:
                dest = target / f.path
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / f.path, dest)
                moved.append(dest)
        except OSError as exc:
            if was_empty:  # nothing of the user's was there: take it all back
                for p in moved:
                    with contextlib.suppress(OSError):
                        p.unlink()
                for p in moved:  # and the directories made for them, when empty
                    for d in p.relative_to(target).parents:
                        if d != Path("."):
                            with contextlib.suppress(OSError):
                                (target / d).rmdir()
            raise PackwrapError(f"{target}: cannot write the project: {exc}") from None
        return moved
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def digest_secret(value: Any) -> str:
    return "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()


def project_meta(
    *,
    blueprint: str,
    instance: str,
    release: str | None,
    arch: str,
    builders: list[str],
    fmt: str,
    pure_packer: bool,
    values: dict[str, Any],
    sensitive: set[str],
    rendered: Rendered,
    regenerate: list[str],
) -> RenderedFile:
    """.packwrap/project.json: what was generated, so `regenerate` can tell an out-of-date
    file from a hand-edited one (read by packwrap/blueprint/record.py)."""
    from packwrap import __version__

    meta = {
        "packwrap_version": __version__,
        "blueprint": blueprint,
        "instance": instance,
        "release": release,
        "arch": arch,
        "builders": builders,
        "format": fmt,
        "pure_packer": pure_packer,
        # secrets are kept as digests only: enough to see that they changed
        "values": {k: digest_secret(v) if k in sensitive else v for k, v in values.items()},
        "regenerate": regenerate,
        "files": {f.path: sha256(f.content) for f in rendered.files if f.path != META_FILE},
    }
    return RenderedFile(META_FILE, json.dumps(meta, indent=2, sort_keys=False) + "\n")
