"""The body of `packwrap fetch-iso` (the typer wrapper is packwrap/commands/fetch_iso.py)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from packwrap.errors import PackwrapError, UsageError
from packwrap.media.fetch import FetchRequest, fetch
from packwrap.media.progress import Progress, make_progress


def run(
    *,
    release: str | None,
    arch: str | None,
    mirrors: list[str],
    file: str | None,
    signify_key: Path | None,
    output: Path | None,
    checksum: str | None,
    insecure_unsigned: bool,
    quiet: bool,
    force: bool,
    cwd: Path | None = None,
    sets: bool = False,
) -> None:
    # RLIMIT_FSIZE: get EFBIG (a clean "disk full" error) rather than dying on SIGXFSZ.
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    project = None
    if release is None and (file is None or not file.startswith(("http://", "https://"))):
        from packwrap.media.project import find_project

        project = find_project(cwd or Path.cwd())
        if project is not None:
            release = project.release
            arch = arch or project.arch
            mirrors = mirrors or project.mirrors
            file = file or project.iso_file
            if release is None and checksum is None:
                raise UsageError(
                    f"{project.vars_file}: no `release` variable; pass --release",
                )
    req = FetchRequest(
        release=release,
        arch=arch or "amd64",
        mirrors=mirrors,
        filename=file,
        signify_key=signify_key,
        output=output,
        checksum=checksum,
        insecure_unsigned=insecure_unsigned,
        force=force,
    )
    progress = make_progress(quiet)
    if sets:  # --sets: the release's sets (the local mirror), not the medium
        _fetch_sets(req, progress, quiet)
        return
    try:
        result = fetch(req, progress=progress)
    except OSError as exc:  # cache dir not writable, disk full writing a small file, ...
        raise os_error(exc) from None
    for warning in result.warnings:
        print(warning, file=sys.stderr)
    if quiet:
        print(result.path)
    else:
        print(result.how + (" (cached copy re-verified, no download)" if result.from_cache else ""))
        print(f"verified: {result.path}")
    if project is not None and project.wants_sets:  # the build serves the sets itself
        _fetch_sets(req, progress, quiet)
    if project is not None:
        from packwrap.media.project import iso_url_for, write_back

        extra = {"snapshot": snapshot_line(result.buildinfo)} if result.buildinfo else {}
        written = write_back(project, iso_url_for(result.path), result.iso_checksum, extra)
        if not quiet:
            names = " and ".join(["iso_url", "iso_checksum", *extra])
            print(f"recorded {names} in {written}")


def _fetch_sets(req: FetchRequest, progress: Progress, quiet: bool) -> None:
    """The release's sets: the local mirror the build serves."""
    import dataclasses

    from packwrap.media.sets import fetch_sets

    try:
        result = fetch_sets(dataclasses.replace(req, output=None), progress=progress)
    except OSError as exc:
        raise os_error(exc) from None
    if not quiet:
        print(result.how + (f" ({len(result.fetched)} downloaded)" if result.fetched else ""))
        print(f"sets: {result.directory}")


def snapshot_line(buildinfo: str) -> str:
    """The snapshot's identity: BUILDINFO's first line (`Build date: 1764... - Thu Dec ...`)."""
    return next((ln.strip() for ln in buildinfo.splitlines() if ln.strip()), "")


def os_error(exc: OSError) -> PackwrapError:
    import errno

    what = "disk full" if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) else "error"
    return PackwrapError(f"{what}: {exc.strerror or exc}", file=exc.filename)
