"""What a blueprint is: a directory with `blueprint.toml` (metadata) and `project/` (templates).

`load_blueprint_dir` reads one directory; `layer` merges a chain child -> parent ->
grandparent into one `Blueprint`: the child's variables, parameters and files override its
parent's by name, and it may add new ones.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packwrap.errors import PackwrapError

METADATA = "blueprint.toml"
PROJECT_DIR = "project"

_VARIABLE_KEYS = {
    "type",
    "default",
    "default_template",
    "help",
    "description",
    "sensitive",
    "choices",
    "builders",
    "packwrap_only",
    "pure_packer_only",
    "settable",
    "path",
}


@dataclass
class Variable:
    """A blueprint variable: becomes a Packer `variable` block and a pkrvars line."""

    name: str
    type: str = "string"
    default: Any = None
    default_template: str | None = None  # Jinja2 expression, rendered per instance
    help: str = ""
    sensitive: bool = False
    choices: list[Any] | None = None
    builders: list[str] | None = None  # None: every source uses it
    packwrap_only: bool = False  # not emitted with --pure-packer
    pure_packer_only: bool = False  # emitted only with --pure-packer
    settable: bool = True  # False: --var rejects it (a flag or the name sets it)
    path: bool = False  # a file name: made absolute by `new`, read by the renderer

    def merged(self, override: dict[str, Any]) -> Variable:
        new = copy.copy(self)
        for key, value in override.items():
            setattr(new, "help" if key == "description" else key, value)
        return new


@dataclass
class BlueprintDir:
    """One directory on the search path, as read (no layering yet)."""

    name: str
    path: Path
    meta: dict[str, Any]
    error: PackwrapError | None = None  # a broken blueprint fails only when it is used

    @property
    def description(self) -> str:
        return str(self.meta.get("description", "")).strip()

    @property
    def extends(self) -> str | None:
        value = self.meta.get("extends")
        return str(value) if value else None


@dataclass
class Blueprint:
    """A layered blueprint: `chain[0]` is the one asked for, then its parents."""

    name: str
    chain: list[BlueprintDir]
    description: str
    parameters: dict[str, Any]
    variables: dict[str, Variable]
    data: dict[str, Any]  # every other table of blueprint.toml (boot, arches, ...), merged
    files: dict[str, Path] = field(default_factory=dict)  # project-relative -> source file
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)  # merged raw variable tables

    def add_variables(self, base: list[Variable]) -> None:
        """Merge variables defined elsewhere (the installer's): `base` gives the definition,
        this blueprint's table for the same name overrides the keys it sets (like a child
        blueprint). Names the blueprint lists keep its order; the others come after."""
        merged = dict(self.variables)
        for var in base:
            merged[var.name] = var.merged(self.specs.get(var.name, {}))
        self.variables = merged

    @property
    def template_dirs(self) -> list[Path]:
        return [d.path / PROJECT_DIR for d in self.chain if (d.path / PROJECT_DIR).is_dir()]

    @property
    def releases_source(self) -> Any:
        return self.parameters.get("releases")


def load_blueprint_dir(path: Path) -> BlueprintDir:
    try:
        return _load_blueprint_dir(path)
    except PackwrapError as exc:
        return BlueprintDir(name=path.name, path=path, meta={}, error=exc)


def _load_blueprint_dir(path: Path) -> BlueprintDir:
    meta_path = path / METADATA
    try:
        with meta_path.open("rb") as f:
            meta = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise PackwrapError(f"invalid TOML: {exc}", file=str(meta_path)) from None
    except OSError as exc:
        raise PackwrapError(f"cannot read: {exc.strerror}", file=str(meta_path)) from None
    variables = meta.get("variables", {})
    if not isinstance(variables, dict):
        raise PackwrapError("[variables] must be a table", file=str(meta_path))
    for name, spec in variables.items():
        if not isinstance(spec, dict):
            raise PackwrapError(f"variable {name!r} must be a table", file=str(meta_path))
        unknown = set(spec) - _VARIABLE_KEYS
        if unknown:
            raise PackwrapError(
                f"variable {name!r}: unknown key(s) {', '.join(sorted(unknown))}",
                file=str(meta_path),
            )
    return BlueprintDir(name=path.name, path=path, meta=meta)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _project_files(d: BlueprintDir) -> dict[str, Path]:
    root = d.path / PROJECT_DIR
    if not root.is_dir():
        return {}
    return {
        p.relative_to(root).as_posix(): p
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def layer(chain: list[BlueprintDir]) -> Blueprint:
    """Merge child-first `chain` into one Blueprint (parents first, children override)."""
    parameters: dict[str, Any] = {}
    specs: dict[str, dict[str, Any]] = {}
    data: dict[str, Any] = {}
    files: dict[str, Path] = {}
    for d in reversed(chain):
        meta = d.meta
        parameters = _deep_merge(parameters, meta.get("parameters", {}))
        for name, spec in meta.get("variables", {}).items():
            spec = dict(spec)
            if "description" in spec:
                spec["help"] = spec.pop("description")
            if "default" in spec and "default_template" not in spec:
                spec["default_template"] = None
            specs[name] = {**specs.get(name, {}), **spec}
        rest = {
            k: v
            for k, v in meta.items()
            if k not in ("parameters", "variables", "description", "extends")
        }
        data = _deep_merge(data, rest)
        files.update(_project_files(d))
    variables = {name: Variable(name=name, **spec) for name, spec in specs.items()}
    return Blueprint(
        name=chain[0].name,
        chain=chain,
        description=next((d.description for d in chain if d.description), ""),
        parameters=parameters,
        variables=variables,
        data=data,
        files=files,
        specs=specs,
    )
