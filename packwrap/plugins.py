"""The Builder protocol and entry-point discovery.

The core never imports a builder by module name: every builder, ours included,
is registered in the `packwrap.builders` entry-point group (see pyproject.toml),
keyed by the source type it claims (`qemu`, `openbsd-vmm`).
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable

    from packwrap.build.state import State
    from packwrap.build.step import Step
    from packwrap.config import Config, Schema
    from packwrap.template.model import BuildSpec

ENTRY_POINT_GROUP = "packwrap.builders"


class Builder(Protocol):
    """What a builder plugin provides (Packer's config / builder split, in Python).

    Optional: `boots_efi(config) -> bool`, whether the VM boots the installer through UEFI
    (a builder without it boots by BIOS, as vmd does); see `boots_efi` below.
    """

    #: Source type this builder claims, e.g. "qemu".
    type_name: ClassVar[str]
    #: Its configuration: options, defaults, validation.
    schema: ClassVar[Schema]

    def steps(self, config: Config) -> list[Step]:
        """The ordered steps for one build of a prepared config."""
        ...

    def http_ip(self, config: Config, state: State) -> str:
        """Address the guest uses to reach the builder's HTTP server ({{ .HTTPIP }})."""
        ...


def available_builders() -> dict[str, EntryPoint]:
    """Source type -> the entry point of its builder class (not loaded yet), per plugin."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep  # loaded lazily by builder_for
    return found


def builder_for(source_type: str) -> type[Builder] | None:
    """The builder class that embeds this source type, or None (hand off to packer)."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == source_type:
            builder: type[Builder] = ep.load()
            return builder
    return None


def boots_efi(builds: Iterable[BuildSpec]) -> bool:
    """Whether any of these builds boots the installer through UEFI, by its builder's own
    rule (a source the builder cannot prepare counts as it is written; validate reports
    its problems). Builds handed to packer are not known here: BIOS."""
    for build in builds:
        try:
            builder = builder_for(build.source.type)
        except ImportError:
            continue  # reported in one line where the build loads its builder
        rule = getattr(builder, "boots_efi", None)
        if builder is None or rule is None:
            continue
        config, _problems, _warnings = builder.schema.prepare(build.source.body)
        if rule(config):
            return True
    return False
