"""-only / -except: Packer's globs on build names."""

from __future__ import annotations

from fnmatch import fnmatchcase

from packwrap.errors import UsageError
from packwrap.template.model import BuildSpec


def _names(build: BuildSpec) -> list[str]:
    # The full name, and `type.name` too when a build block name prefixes it.
    names = [build.name]
    if build.short_name != build.name:
        names.append(build.short_name)
    return names


def matches(build: BuildSpec, patterns: list[str]) -> bool:
    return any(fnmatchcase(n, p) for p in patterns for n in _names(build))


def split_patterns(values: list[str]) -> list[str]:
    """`-only=a,b -only c` -> [a, b, c]."""
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def select(builds: list[BuildSpec], only: list[str], except_: list[str]) -> list[BuildSpec]:
    only, except_ = split_patterns(only), split_patterns(except_)
    chosen = [b for b in builds if not only or matches(b, only)]
    chosen = [b for b in chosen if not except_ or not matches(b, except_)]
    if not chosen and builds:
        known = ", ".join(b.name for b in builds)
        what = " ".join(
            [f"-only={','.join(only)}"] * bool(only)
            + [f"-except={','.join(except_)}"] * bool(except_)
        )
        raise UsageError(f"{what} selects no build (builds: {known})")
    return chosen
