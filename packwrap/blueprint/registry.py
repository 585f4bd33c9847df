"""Find blueprints on the search path and resolve names like `openbsd-76`.

Search path, first match wins (so a user's blueprint can shadow a built-in one):
1. every directory in $PACKWRAP_BLUEPRINT_PATH (os.pathsep-separated),
2. $XDG_CONFIG_HOME/packwrap/blueprints (default ~/.config/packwrap/blueprints),
3. the built-in blueprints (packwrap/_blueprints in a wheel, else <repo>/blueprints).
A blueprint is a sub-directory holding `blueprint.toml`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from packwrap.blueprint import installer
from packwrap.blueprint.model import METADATA, Blueprint, BlueprintDir, layer, load_blueprint_dir
from packwrap.errors import PackwrapError, UsageError

ENV_PATH = "PACKWRAP_BLUEPRINT_PATH"
_INSTANCE = re.compile(r"^(?P<base>.+)-(?:(?P<major>\d)(?P<minor>\d+)|(?P<snapshots>snapshots))$")


def release_short(release: str | None) -> str:
    """'7.6' -> '76' (blueprint instance names, set names); snapshots -> the number of the
    release under development ('81')."""
    if not release:
        return ""
    from packwrap.media.keys import release_tag

    return release_tag(release)


def instance_suffix(release: str) -> str:
    """`openbsd-76` for 7.6, `openbsd-snapshots` for snapshots."""
    return release if release == "snapshots" else release.replace(".", "")


def builtin_dir() -> Path:
    """Blueprints shipped with packwrap: inside the wheel, or the repo's blueprints/."""
    from importlib import resources

    try:
        shipped = resources.files("packwrap") / "_blueprints"
        if shipped.is_dir():
            return Path(str(shipped))
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parents[2] / "blueprints"


def search_path(env: Mapping[str, str] | None = None) -> list[Path]:
    env = os.environ if env is None else env
    dirs = [Path(p).expanduser() for p in env.get(ENV_PATH, "").split(os.pathsep) if p]
    config_home = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")) / ".config")
    dirs.append(Path(config_home).expanduser() / "packwrap" / "blueprints")
    dirs.append(builtin_dir())
    return dirs


def _candidates(env: Mapping[str, str] | None) -> list[BlueprintDir]:
    """Every blueprint directory on the path, in search order (duplicates kept)."""
    found = []
    for root in search_path(env):
        if not root.is_dir():
            continue
        for sub in sorted(root.iterdir()):
            if (sub / METADATA).is_file():
                found.append(load_blueprint_dir(sub))
    return found


def _chain(name: str, candidates: list[BlueprintDir]) -> list[BlueprintDir]:
    """`name` and its `extends` parents. A blueprint extending its own name extends the
    next one of that name down the path (a user's `openbsd` layered on the built-in)."""
    chain: list[BlueprintDir] = []
    start = 0
    wanted = name
    while wanted:
        match = next(
            (i for i in range(start, len(candidates)) if candidates[i].name == wanted), None
        )
        if match is None:
            if not chain:
                raise KeyError(wanted)
            child = chain[-1]
            raise PackwrapError(
                f"blueprint {child.name!r} extends {wanted!r}, which is not on the search path",
                file=str(child.path / METADATA),
            )
        d = candidates[match]
        if d.error is not None:
            raise d.error
        if any(c.path == d.path for c in chain):
            raise PackwrapError(
                f"blueprint {d.name!r}: `extends` loops back to itself", file=str(d.path / METADATA)
            )
        chain.append(d)
        parent = d.extends
        start = match + 1 if parent == d.name else 0
        wanted = parent or ""
    return chain


def list_blueprints(
    env: Mapping[str, str] | None = None,
) -> list[Blueprint | tuple[str, PackwrapError]]:
    """One layered Blueprint per name (the first on the path), sorted by name; a broken
    one is listed as (name, error) so the others still show."""
    candidates = _candidates(env)
    out: list[Blueprint | tuple[str, PackwrapError]] = []
    for n in sorted({c.name for c in candidates}):
        try:
            out.append(layer(_chain(n, candidates)))
        except PackwrapError as exc:
            out.append((n, exc))
    return out


def load_blueprint(name: str, env: Mapping[str, str] | None = None) -> Blueprint:
    candidates = _candidates(env)
    try:
        return layer(_chain(name, candidates))
    except KeyError:
        known = sorted({c.name for c in candidates})
        raise UsageError(
            f"unknown blueprint {name!r}; known: {', '.join(known) or 'none'}"
            " (see `packwrap blueprints`)"
        ) from None


def known_releases(bp: Blueprint) -> list[str]:
    source = bp.releases_source
    if source == "autoinstall":
        return installer.known_releases()
    if isinstance(source, list):
        return [str(r) for r in source]
    return []


@dataclass
class Instance:
    """A blueprint chosen for one release: `openbsd-76` = openbsd with release 7.6."""

    blueprint: Blueprint
    name: str  # instance name: source labels, file names, vm_name
    release: str | None


def resolve(name: str, env: Mapping[str, str] | None = None) -> Instance:
    """`openbsd` (its default release), `openbsd-76` (release 7.6), or any blueprint name."""
    candidates = _candidates(env)
    names = {c.name for c in candidates}
    if name in names:
        bp = layer(_chain(name, candidates))
        release = bp.parameters.get("default_release")
        if release is not None:
            release = str(release)
            _check_release(bp, release)
            return Instance(bp, f"{name}-{instance_suffix(release)}", release)
        return Instance(bp, name, None)
    m = _INSTANCE.match(name)
    if m and m["base"] in names:
        bp = layer(_chain(m["base"], candidates))
        if bp.releases_source is None:
            raise UsageError(f"blueprint {bp.name!r} has no releases; use {bp.name!r}")
        release = m["snapshots"] or f"{m['major']}.{m['minor']}"
        _check_release(bp, release)
        return Instance(bp, name, release)
    raise UsageError(
        f"unknown blueprint {name!r}; known: {', '.join(sorted(names)) or 'none'}"
        " (see `packwrap blueprints`)"
    )


def _check_release(bp: Blueprint, release: str) -> None:
    known = known_releases(bp)
    if release not in known:
        raise UsageError(
            f"blueprint {bp.name!r} does not know release {release}; "
            f"known releases: {', '.join(known) or 'none'}"
        )


def describe_blueprints(env: Mapping[str, str] | None = None) -> list[str]:
    """`name  description` lines, then the releases (`openbsd-76 ...`) where there are any."""
    lines = []
    blueprints = list_blueprints(env)
    width = max((len(b[0] if isinstance(b, tuple) else b.name) for b in blueprints), default=0)
    width += 2
    for bp in blueprints:
        if isinstance(bp, tuple):
            lines.append(f"{bp[0].ljust(width)}(broken: {bp[1]})")
            continue
        first = bp.description.splitlines()[0] if bp.description else ""
        lines.append(f"{bp.name.ljust(width)}{first}")
        if bp.releases_source is not None:
            try:
                releases = known_releases(bp)
            except PackwrapError as exc:
                lines.append(f"{''.ljust(width)}releases: unavailable ({exc})")
                continue
            names = " ".join(f"{bp.name}-{instance_suffix(r)}" for r in releases)
            lines.append(f"{''.ljust(width)}releases: {names}")
    return lines
