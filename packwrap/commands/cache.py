"""`packwrap cache list|show|prune`: the install cache (packwrap/installcache/store.py).

`list` shows each cached install: key, release, size, age, last use and the build that
made it. `show KEY` (a unique prefix) prints the entry's key document, everything that
went into its key, to see why two builds did or did not share an install.
`prune [--older-than D] [--max-size S]` removes entries unused for longer than D (`30d`,
`12h`, Go durations), then the least recently used until the rest fit in S (`10G`; a
bare number is MiB); without options it applies the default limit (20G).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from packwrap.installcache.store import Entry

cache_app = typer.Typer(
    name="cache",
    help="The install cache: list, show and prune cached installs.",
    no_args_is_help=True,
    add_completion=False,
)


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")


def human_size(n: int) -> str:
    for unit in ("B", "K", "M", "G"):
        if n < 1024:
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n:.1f}T"


def human_age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def parse_age(text: str) -> float:
    """`30d` (days) or a Go duration (`12h`, `90m`)."""
    from packwrap.durations import parse_duration
    from packwrap.errors import PackwrapError

    raw = text.strip()
    if raw.endswith("d") and raw[:-1].isdigit():
        return int(raw[:-1]) * 86400.0
    seconds = parse_duration(raw, what="--older-than")
    if seconds < 0:
        raise PackwrapError(f"--older-than {text!r}: must not be negative")
    return seconds


def _row(entry: Entry, now: float) -> str:
    return (
        f"{entry.short_key:<12}  {str(entry.meta.get('release') or '-'):<9}  "
        f"{human_size(entry.size):>7}  {human_age(now - entry.created):>5}  "
        f"{human_age(now - entry.last_used) + ' ago':>9}  {entry.meta.get('build') or '-'}"
    )


@cache_app.command("list")
def list_cmd() -> None:
    """Show the cached installs, least recently used first."""
    from packwrap.installcache.store import Store, installs_root

    store = Store(installs_root())
    entries = store.entries()
    if not entries:
        typer.echo(f"No cached installs in {store.root}")
        return
    now = time.time()
    typer.echo(f"{'KEY':<12}  {'RELEASE':<9}  {'SIZE':>7}  {'AGE':>5}  {'LAST USE':>9}  BUILD")
    for entry in entries:
        typer.echo(_row(entry, now))
    total = human_size(sum(e.size for e in entries))
    typer.echo(f"{len(entries)} cached installs, {total}, in {store.root}")


@cache_app.command("show")
def show_cmd(key: str = typer.Argument(..., help="The entry's key, or a unique prefix")) -> None:
    """Print what went into a cached install's key (its key document, as JSON)."""
    import json

    from packwrap.errors import PackwrapError
    from packwrap.installcache.store import KEY_DOCUMENT, Store, installs_root

    store = Store(installs_root())
    found = [e for e in store.entries() if e.key.startswith(key.lower())]
    if len(found) != 1:
        what = "no cached install" if not found else f"{len(found)} cached installs"
        raise PackwrapError(f"{what} with a key starting {key!r} in {store.root}")
    document = json.loads((found[0].path / KEY_DOCUMENT).read_text(encoding="utf-8"))
    typer.echo(json.dumps(document, indent=2, sort_keys=True))


@cache_app.command("prune")
def prune_cmd(
    older_than: str = typer.Option(None, "--older-than", help="e.g. 30d or 12h: unused longer"),
    max_size: str = typer.Option(None, "--max-size", help="e.g. 10G: LRU out beyond it"),
) -> None:
    """Remove cached installs unused for too long, then the least recently used."""
    from packwrap.config.size import parse_size
    from packwrap.errors import PackwrapError
    from packwrap.installcache.store import DEFAULT_LIMIT, Store, installs_root

    age = parse_age(older_than) if older_than is not None else None
    try:
        limit = parse_size(max_size).bytes if max_size is not None else None
    except ValueError as exc:
        raise PackwrapError(f"--max-size {max_size!r}: {exc}") from None
    if age is None and limit is None:
        limit = DEFAULT_LIMIT
    store = Store(installs_root())
    sizes = {e.key: e.size for e in store.entries()}  # gone once removed
    removed = store.prune(older_than=age, max_size=limit)
    for entry in removed:
        typer.echo(f"Removed {entry.short_key} ({human_size(sizes.get(entry.key, 0))})")
    typer.echo(f"{len(removed)} removed, {len(store.entries())} left in {store.root}")
