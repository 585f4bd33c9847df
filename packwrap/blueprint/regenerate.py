"""A project's generated docroot files against its variables: what a build serves, and
`packwrap regenerate`.

A blueprint marks some files as regenerable (`regenerate` in blueprint.toml:
http/install.conf.pkr.in, http/disklabel), and `new` records the hash of each one as it
wrote it (.packwrap/project.json). `plan()` renders them again from the template's
evaluated variables, in memory, and finds each file:
- current: on disk as the variables render it;
- stale: still as packwrap wrote it, but the variables now render it differently;
- missing: deleted;
- edited: changed by hand (kept; a warning when the variables changed since).
`build` serves stale and missing files, rendered for that build, from its private HTTP
overlay; `validate` and `lint` check them in memory. None of them writes anything. Only
`new` and `packwrap regenerate` (`regenerate()`) write http/: stale and missing files,
hand-edited ones only with --force, then the record.
A directory without a record is not a blueprint project: plan() returns None.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packwrap.blueprint.record import META_FILE, ProjectRecord, read_record
from packwrap.errors import PackwrapError, UsageError

CURRENT = "current"
STALE = "stale"
MISSING = "missing"
EDITED = "edited"


class BlueprintUnavailable(PackwrapError):
    """The blueprint that made the project cannot be loaded any more."""


@dataclass(frozen=True)
class GeneratedFile:
    path: str  # project-relative, posix ("http/install.conf.pkr.in")
    content: str  # as the variables render it now
    secret: bool
    status: str  # CURRENT | STALE | MISSING | EDITED


@dataclass(frozen=True)
class Generated:
    """The regenerable files of a project, rendered for the given variables."""

    record: ProjectRecord
    values: dict[str, Any]  # resolved: the template's variables over the recorded values
    sensitive: frozenset[str]
    changed: list[str]  # variables whose values differ from the recorded ones
    files: list[GeneratedFile]

    @property
    def project_dir(self) -> Path:
        return self.record.project_dir

    def served(self) -> dict[str, GeneratedFile]:
        """Files the build serves as rendered here rather than from disk, by path."""
        return {f.path: f for f in self.files if f.status in (STALE, MISSING)}

    def served_text(self, path: str) -> str | None:
        """What a build serves for the project-relative `path`: the rendered text of a
        stale or missing file, else None (the file on disk is served as it is)."""
        f = self.served().get(path)
        return f.content if f is not None else None

    def reason(self, f: GeneratedFile) -> str:
        if f.status == MISSING:
            return "it is missing"
        if self.changed:
            return f"variables changed: {', '.join(self.changed)}"
        return "the blueprint renders it differently now"

    def notes(self) -> list[str]:
        """One line per file served as rendered in memory."""
        return [
            f"{f.path} is out of date ({self.reason(f)}): the build serves it rendered "
            "for the variables; `packwrap regenerate` writes it to the project"
            for f in self.served().values()
        ]

    def warnings(self) -> list[str]:
        """One line per hand-edited file the changed variables no longer reach."""
        if not self.changed:
            return []
        return [
            f"{f.path} was edited by hand, so packwrap serves it as it is, not rendered "
            f"for the changed variables ({', '.join(self.changed)}); "
            "`packwrap regenerate --force` replaces it"
            for f in self.files
            if f.status == EDITED
        ]

    def recorded_values(self) -> dict[str, Any]:
        """The values as the record keeps them (secrets as digests)."""
        from packwrap.blueprint.project import digest_secret

        return {k: digest_secret(v) if k in self.sensitive else v for k, v in self.values.items()}


def plan(
    project_dir: Path | str, variables: Mapping[str, Any], *, efi: bool = False
) -> Generated | None:
    """Render the regenerable files for `variables` and compare them with the disk; `efi`:
    a build of the template boots through UEFI (packwrap.plugins.boots_efi).

    Reads only. None for a directory that is not a blueprint project (or whose blueprint
    regenerates nothing); BlueprintUnavailable when the blueprint cannot be loaded;
    PackwrapError when the variables cannot be rendered (a bad value).
    """
    project_dir = Path(project_dir)
    record = read_record(project_dir)
    if record is None or not record.regenerate:
        return None
    # only a blueprint project pays for the blueprint engine (Jinja2)
    from packwrap.blueprint import new, registry
    from packwrap.blueprint.project import digest_secret
    from packwrap.blueprint.render import Options, render_project, sha256
    from packwrap.blueprint.values import coerce, resolve_values

    meta = record.data
    try:
        bp = new.full_variables(registry.load_blueprint(meta["blueprint"]))
    except (PackwrapError, KeyError) as exc:
        raise BlueprintUnavailable(
            f"cannot render {', '.join(record.regenerate)}: {exc}", file=str(record.path)
        ) from None
    options = Options(
        name=meta.get("instance", ""),
        release=record.release,
        arch=meta.get("arch", "amd64"),
        builders=list(meta.get("builders", [])),
        format=meta.get("format", "hcl"),
        pure_packer=bool(meta.get("pure_packer")),
        base_dir=project_dir,
        efi=efi,
    )
    recorded = record.values
    overrides = {}
    for name, var in bp.variables.items():
        if name in variables and variables[name] is not None:
            overrides[name] = coerce(var, variables[name])
        elif name in recorded and not var.sensitive:
            overrides[name] = recorded[name]
    values = resolve_values(bp.variables, new.base_context(bp, options), overrides)
    sensitive = frozenset(n for n, v in bp.variables.items() if v.sensitive)
    changed = sorted(
        n
        for n, v in values.items()
        if n in recorded and (digest_secret(v) if n in sensitive else v) != recorded[n]
    )
    rendered = render_project(bp, options, values, only=set(record.regenerate))
    files = []
    for f in rendered.files:
        if f.path not in record.regenerate:
            continue
        try:
            have: str | None = sha256((project_dir / f.path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            have = None
        except (OSError, UnicodeDecodeError) as exc:
            raise PackwrapError(f"cannot read: {exc}", file=str(project_dir / f.path)) from None
        if have == sha256(f.content):
            status = CURRENT
        elif have is None:
            status = MISSING
        elif have == record.files.get(f.path):
            status = STALE
        else:
            status = EDITED
        files.append(GeneratedFile(f.path, f.content, f.secret, status))
    return Generated(record, values, sensitive, changed, files)


def regenerate(
    project_dir: Path | str,
    variables: Mapping[str, Any],
    ui: Any,
    *,
    force: bool = False,
    efi: bool = False,
) -> list[str]:
    """`packwrap regenerate`: write stale and missing generated files (hand-edited ones
    too with `force`), each atomically, then the record; returns the paths written."""
    from packwrap.blueprint.render import sha256

    gen = plan(project_dir, variables, efi=efi)
    if gen is None:
        raise UsageError(
            f"{project_dir}: not a blueprint project with generated files "
            f"(no {META_FILE} naming any): nothing to regenerate"
        )
    meta = json.loads(json.dumps(gen.record.data))  # a copy to update
    hashes = meta.setdefault("files", {})
    written: list[str] = []
    kept_edit = False
    for f in gen.files:
        if f.status == EDITED and not force:
            kept_edit = True
            ui.error(f"Warning: {f.path} was edited by hand: kept (--force replaces it)")
            continue
        if f.status != CURRENT:
            why = "replacing a hand-edit, --force" if f.status == EDITED else gen.reason(f)
            _write(gen.project_dir / f.path, f.content, f.secret)
            written.append(f.path)
            ui.say(f"Regenerated {f.path} ({why})")
        hashes[f.path] = sha256(f.content)
    if not kept_edit and (written or gen.changed):
        # Record the values the files now reflect. While a hand-edited file lags behind,
        # keep the old ones so every build repeats the warning.
        meta["values"] = gen.recorded_values()
    if meta != gen.record.data:
        _write(gen.record.path, json.dumps(meta, indent=2) + "\n", secret=False)
    return written


def _write(path: Path, text: str, secret: bool) -> None:
    from packwrap.blueprint.project import write_file_atomic

    try:
        write_file_atomic(path, text, secret)
    except OSError as exc:  # e.g. a read-only http/: the file is as it was
        raise PackwrapError(f"cannot write: {exc.strerror or exc}", file=str(path)) from None
