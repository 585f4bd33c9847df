"""fetch-iso inside a project: read release/arch/mirror/iso_file, write back iso_url/iso_checksum.

The release is the project's `release` variable (or another that names it: the one rule is
packwrap/blueprint/record.py's resolve_release).

A project is a directory with *.pkr.hcl (or *.pkr.json) and *.auto.pkrvars.hcl (or
*.auto.pkrvars.json) files. Variables are read
with packwrap.template.load_template, else (a template that cannot load yet) by reading
the files' plain values (variable defaults, then *.auto.pkrvars.hcl in lexical order).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packwrap.blueprint.record import RELEASE_VARIABLES, resolve_release
from packwrap.errors import PackwrapError

if TYPE_CHECKING:
    from packwrap.template.syntax import Attr, Body

VARIABLES = (
    *RELEASE_VARIABLES,
    "arch",
    "mirror",
    "iso_file",
    "sets_location",
    "sets_http_server",
)


@dataclasses.dataclass
class Project:
    dir: Path
    vars_file: Path  # where iso_url / iso_checksum are written
    release: str | None
    arch: str | None
    mirrors: list[str]
    iso_file: str | None
    #: sets_location = "http" from the build's own server: fetch-iso fetches the sets too
    wants_sets: bool = False


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
        wants_sets=_serves_sets(values),
    )


def _serves_sets(values: Mapping[str, Any]) -> bool:
    from packwrap.autoinstall.sets_source import serves_local_sets

    return serves_local_sets(values)


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


def _parse_json(path: Path) -> dict:
    import json

    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise PackwrapError(f"cannot parse: {exc}", file=str(path)) from None
    if not isinstance(doc, dict):
        raise PackwrapError("expected a JSON object", file=str(path))
    return doc


def _hcl_body(path: Path) -> Body:
    from packwrap.template.hcl_reader import parse_hcl

    return parse_hcl(path.read_text(encoding="utf-8"), str(path))


def _literal_values(attrs: Mapping[str, Attr], path: Path) -> dict[str, Any]:
    """The wanted attributes that are plain values (a reference cannot be read yet)."""
    from packwrap.template.evaluate import EvalError, FuncError, Scope, evaluate
    from packwrap.template.functions import FUNCTIONS

    scope = Scope({}, FUNCTIONS, path.parent, path.parent)
    values = {}
    for name in VARIABLES:
        if name in attrs:
            with contextlib.suppress(EvalError, FuncError):
                values[name] = evaluate(attrs[name].expr, scope)
    return values


def _parse_variables(templates: list[Path], var_files: list[Path]) -> dict:
    """Variable defaults, then the var files, read with packwrap's own HCL reader (the one
    that loads templates, so a value means here what it means to a build)."""
    values: dict[str, Any] = {}
    for path in templates:
        if path.suffix == ".json":
            blocks = _parse_json(path).get("variable") or {}
            for name, body in blocks.items() if isinstance(blocks, dict) else ():
                if name in VARIABLES and isinstance(body, dict) and "default" in body:
                    values[name] = body["default"]
            continue
        for block in _hcl_body(path).blocks_of("variable"):
            if block.labels and block.labels[0] in VARIABLES and "default" in block.body.attrs:
                defaults = _literal_values({block.labels[0]: block.body.attrs["default"]}, path)
                values.update(defaults)
    for path in var_files:
        if path.suffix == ".json":
            doc = _parse_json(path)
            values.update({k: doc[k] for k in VARIABLES if k in doc})
        else:
            values.update(_literal_values(_hcl_body(path).attrs, path))
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


def write_back(
    project: Project, iso_url: str, iso_checksum: str, extra: dict[str, str] | None = None
) -> Path:
    from packwrap.template.pkrvars import update_pkrvars

    values = {"iso_url": iso_url, "iso_checksum": iso_checksum, **(extra or {})}
    update_pkrvars(project.vars_file, values)
    return project.vars_file


def iso_url_for(path: Path) -> str:
    """Absolute: `packwrap build dir/` may run from anywhere, so a relative path would break."""
    return str(Path(path).absolute())
