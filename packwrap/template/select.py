"""-only / -except: Packer's globs on build names; -except also on post-processors.

A post-processor whose `name` (its type when it has none) matches an -except glob is
left out with the rest of its chain, as Packer's hcl2template does (GetBuilds).
"""

from __future__ import annotations

from dataclasses import replace
from fnmatch import fnmatchcase

from packwrap.errors import UsageError
from packwrap.template.model import BlockSpec, BuildSpec


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
    if except_:
        chosen = [replace(b, post_processors=_chains_except(b, except_)) for b in chosen]
    if not chosen and builds:
        known = ", ".join(b.name for b in builds)
        what = " ".join(
            [f"-only={','.join(only)}"] * bool(only)
            + [f"-except={','.join(except_)}"] * bool(except_)
        )
        raise UsageError(f"{what} selects no build (builds: {known})")
    return chosen


def _chains_except(build: BuildSpec, except_: list[str]) -> list[list[BlockSpec]]:
    chains = []
    for chain in build.post_processors:
        kept: list[BlockSpec] = []
        for block in chain:
            if any(fnmatchcase(block.name or block.type, p) for p in except_):
                break  # the rest of the chain would get an artifact it was not made for
            kept.append(block)
        if kept:
            chains.append(kept)
    return chains
