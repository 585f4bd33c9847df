"""fetch-iso inside a project: read release/arch/mirror/iso_file, write back iso_url/iso_checksum.

The release is the project's `release` variable (or another that names it: the one rule is
packwrap/blueprint/record.py's resolve_release).

A project is a directory with *.pkr.hcl (or *.pkr.json) and *.auto.pkrvars.hcl (or
*.auto.pkrvars.json) files. Variables are read
with packwrap.template.load_template when it is available, else by parsing the files
with python-hcl2 (variable defaults, then *.auto.pkrvars.hcl in lexical order).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from packwrap.blueprint.record import RELEASE_VARIABLES, resolve_release
from packwrap.errors import PackwrapError

VARIABLES = (*RELEASE_VARIABLES, "arch", "mirror", "iso_file")


@dataclasses.dataclass
class Project:
    dir: Path
    vars_file: Path  # where iso_url / iso_checksum are written
    release: str | None
    arch: str | None
    mirrors: list[str]
    iso_file: str | None


def find_project(directory: Path) -> Project | None:
    directory = Path(directory)
    templates = sorted([*directory.glob("*.pkr.hcl"), *directory.glob("*.pkr.json")])
    var_files = sorted(
        [*directory.glob("*.auto.pkrvars.hcl"), *directory.glob("*.auto.pkrvars.json")]
    )
    if not templates or not var_files:
        return None
    values = _load_variables(directory, templates, var_files)
    mirrors = values.get("mirror")
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    elif not isinstance(mirrors, list):
        mirrors = []
    return Project(
        dir=directory,
        vars_file=_vars_file_for(var_files),
        release=_str(resolve_release(variables=values)),
        arch=_str(values.get("arch")),
        mirrors=[str(m) for m in mirrors if m],
        iso_file=_str(values.get("iso_file")),
    )


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _load_variables(directory: Path, templates: list[Path], var_files: list[Path]) -> dict:
    try:
        from packwrap.template import load_template

        template = load_template(directory)
    except (ImportError, PackwrapError):
        # No template model, or a template that cannot load yet -- typically because
        # iso_url/iso_checksum have no value before the first fetch-iso. The four
        # variables we need are plain values: read them directly.
        return _parse_variables(templates, var_files)
    return {k: template.variables.get(k) for k in VARIABLES}


def _unquote(value: Any) -> Any:
    # python-hcl2 keeps the quotes of string literals ('"7.6"').
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    return value


def _parse_file(path: Path) -> dict:
    if path.suffix == ".json":
        import json

        try:
            doc = json.loads(path.read_text())
        except ValueError as exc:
            raise PackwrapError(f"cannot parse: {exc}", file=str(path)) from None
        if not isinstance(doc, dict):
            raise PackwrapError("expected a JSON object", file=str(path))
        variables = doc.get("variable")
        # HCL2's JSON syntax: {"variable": {"name": {...}}}; python-hcl2: [{"name": {...}}]
        if isinstance(variables, dict):
            doc["variable"] = [variables]
        return doc
    import hcl2

    try:
        return hcl2.loads(path.read_text())
    except Exception as exc:  # python-hcl2 raises lark errors of many kinds
        raise PackwrapError(f"cannot parse: {exc}".splitlines()[0], file=str(path)) from None


def _parse_variables(templates: list[Path], var_files: list[Path]) -> dict:
    values: dict[str, Any] = {}
    for path in templates:
        doc = _parse_file(path)
        for block in doc.get("variable", []):
            if not isinstance(block, dict):
                continue
            for name, body in block.items():
                name = _unquote(name)
                if name in VARIABLES and isinstance(body, dict) and "default" in body:
                    values[name] = _unquote(body["default"])
    for path in var_files:
        doc = _parse_file(path)
        for name in VARIABLES:
            if name in doc:
                values[name] = _unquote(doc[name])
    return values


def _vars_file_for(var_files: list[Path]) -> Path:
    """The *.auto.pkrvars.hcl that sets `release` (else the first one)."""
    import re

    for path in var_files:
        try:
            if re.search(r'^\s*"?release"?\s*[=:]', path.read_text(), re.MULTILINE):
                return path
        except OSError:
            continue
    return var_files[0]


def write_back(project: Project, iso_url: str, iso_checksum: str) -> Path:
    try:
        from packwrap.template.pkrvars import update_pkrvars
    except ImportError:
        raise PackwrapError(
            "cannot record the media in the project yet (packwrap.template.pkrvars is missing); "
            f'set iso_url = "{iso_url}" and iso_checksum = "{iso_checksum}" by hand',
            file=str(project.vars_file),
        ) from None
    update_pkrvars(project.vars_file, {"iso_url": iso_url, "iso_checksum": iso_checksum})
    return project.vars_file


def iso_url_for(path: Path) -> str:
    """Absolute: `packwrap build dir/` may run from anywhere, so a relative path would break."""
    return str(Path(path).absolute())
