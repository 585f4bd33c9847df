""".packwrap/project.json, the record `packwrap new` leaves in a project, and the one rule
for a project's OpenBSD release.

The only reader of project.json: `regenerate`, `validate`, `lint`, `new` (leftovers) and
the site-set build step all come here. Imports nothing heavy, so build steps may use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packwrap.errors import PackwrapError

META_DIR = ".packwrap"
META_FILE = f"{META_DIR}/project.json"

#: Template variables that name the release, in the order they are looked at.
RELEASE_VARIABLES = ("release", "openbsd_release", "os_version")


@dataclass(frozen=True)
class ProjectRecord:
    """What `new` generated: blueprint, instance, options, values (secrets as digests),
    the regenerable files and the hash of every file as it was written."""

    path: Path  # the project.json file
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def project_dir(self) -> Path:
        return self.path.parent.parent

    @property
    def release(self) -> str | None:
        return _text(self.data.get("release"))

    @property
    def arch(self) -> str | None:
        return _text(self.data.get("arch"))

    @property
    def values(self) -> dict[str, Any]:
        values = self.data.get("values")
        return dict(values) if isinstance(values, dict) else {}

    @property
    def regenerate(self) -> list[str]:
        return [str(p) for p in self.data.get("regenerate") or []]

    @property
    def files(self) -> dict[str, str]:
        files = self.data.get("files")
        return dict(files) if isinstance(files, dict) else {}


def read_record(project_dir: Path | str) -> ProjectRecord | None:
    """The project's record; None when it has none (not made by `packwrap new`)."""
    path = Path(project_dir) / META_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackwrapError(f"cannot read the project record: {exc}", file=str(path)) from None
    if not isinstance(data, dict):
        raise PackwrapError("the project record is not a JSON object", file=str(path))
    return ProjectRecord(path, data)


def resolve_release(
    *,
    flag: str | None = None,
    record: ProjectRecord | None = None,
    variables: Mapping[str, Any] | None = None,
    media: Iterable[Any] = (),
    default: str | None = None,
) -> str | None:
    """The OpenBSD release of a project: the command line (--release), else the record of
    `new`, else a template variable (RELEASE_VARIABLES), else an installNN.iso / cdNN.iso
    named in the given values, else `default`."""
    if flag:
        return str(flag)
    if record is not None and record.release:
        return record.release
    for name in RELEASE_VARIABLES:
        value = (variables or {}).get(name)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and value:
            return str(value)
    for value in media:
        for text in value if isinstance(value, list | tuple) else (value,):
            m = re.search(r"(?:install|cd)(\d)(\d)\.(?:iso|img)", str(text))
            if m:
                return f"{m.group(1)}.{m.group(2)}"
    return default


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
