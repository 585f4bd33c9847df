"""The evaluated template: what the build and validate commands consume.

Plain dataclasses, no parsing here, so importing them is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packwrap.config.schema import SourceBody
from packwrap.masking import mask


@dataclass
class BlockSpec:
    """A provisioner or post-processor: its type, optional name, evaluated body."""

    type: str
    name: str | None
    body: SourceBody
    only: list[str] = field(default_factory=list)
    except_: list[str] = field(default_factory=list)


@dataclass
class SourceSpec:
    """A builder configuration: `source "TYPE" "NAME"` (or a legacy builder)."""

    type: str
    name: str
    body: SourceBody


@dataclass
class BuildSpec:
    """One build: a source plus the provisioners and post-processor chains of its block."""

    name: str  # "qemu.openbsd-76" or "<build>.qemu.openbsd-76"
    source: SourceSpec
    provisioners: list[BlockSpec] = field(default_factory=list)
    post_processors: list[list[BlockSpec]] = field(default_factory=list)
    build_name: str | None = None  # the build block's `name`, if any
    description: str | None = None

    @property
    def short_name(self) -> str:
        """`type.name` (without the build block's name)."""
        return f"{self.source.type}.{self.source.name}"


@dataclass
class Template:
    """A loaded and evaluated template (file or directory)."""

    path: Path  # what the user named (file or directory)
    dir: Path  # directory holding the template (path.root)
    format: str  # "hcl" | "json" | "legacy"
    variables: dict[str, Any] = field(default_factory=dict)
    sensitive: set[str] = field(default_factory=set)
    builds: list[BuildSpec] = field(default_factory=list)
    locals: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # template files read, in order
    var_files: list[Path] = field(default_factory=list)  # pkrvars files read, in order
    warnings: list[str] = field(default_factory=list)

    def mask(self, text: str) -> str:
        """`text` with every sensitive value replaced by <sensitive>."""
        return mask(text, self.sensitive)
