"""Keep a project's generated docroot files in step with its variables.

`packwrap build` and `packwrap validate` call `refresh(project_dir, variables, ui)` with the
template's evaluated variables. For each file the blueprint marks as regenerable
(`regenerate` in blueprint.toml: http/install.conf.pkr.in, http/disklabel), recorded in
`.packwrap/project.json` with the hash of what `new` wrote:
- still as packwrap wrote it and the variables now render it differently: rewrite it;
- edited by the user: leave it, and warn if the variables changed since;
- deleted: write it again.
A directory without project.json is not a blueprint project: nothing happens.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packwrap.blueprint.project import (
    META_FILE,
    digest_secret,
    read_meta,
    write_file_atomic,
)
from packwrap.blueprint.render import Options, render_project, sha256
from packwrap.errors import PackwrapError


class _StderrUi:
    def say(self, message: str) -> None:
        print(f"==> {message}", file=sys.stderr)

    def message(self, message: str) -> None:
        print(f"    {message}", file=sys.stderr)

    def error(self, message: str) -> None:
        print(f"==> {message}", file=sys.stderr)


def _warn(ui: Any, message: str) -> None:
    warn = getattr(ui, "warn", None) or ui.error
    warn(f"Warning: {message}")


def refresh(project_dir: Path | str, variables: Mapping[str, Any], ui: Any = None) -> list[str]:
    """Re-render stale generated files; returns the project-relative paths rewritten."""
    from packwrap.blueprint import new, registry
    from packwrap.blueprint.values import coerce, resolve_values

    project_dir = Path(project_dir)
    ui = ui or _StderrUi()
    meta = read_meta(project_dir)
    if meta is None:
        return []
    regenerate = list(meta.get("regenerate", []))
    if not regenerate:
        return []
    try:
        bp = new.full_variables(registry.load_blueprint(meta["blueprint"]))
    except PackwrapError as exc:
        _warn(ui, f"cannot regenerate {', '.join(regenerate)}: {exc}")
        return []
    options = Options(
        name=meta["instance"],
        release=meta.get("release"),
        arch=meta["arch"],
        builders=list(meta.get("builders", [])),
        format=meta.get("format", "hcl"),
        pure_packer=bool(meta.get("pure_packer")),
        base_dir=project_dir,
    )
    overrides = {}
    for name, var in bp.variables.items():
        if name in variables and variables[name] is not None:
            overrides[name] = coerce(var, variables[name])
        elif name in meta.get("values", {}) and not var.sensitive:
            overrides[name] = meta["values"][name]
    values = resolve_values(bp.variables, new.base_context(bp, options), overrides)
    sensitive = {n for n, v in bp.variables.items() if v.sensitive}
    recorded = meta.get("values", {})
    changed = sorted(
        n
        for n, v in values.items()
        if n in recorded and (digest_secret(v) if n in sensitive else v) != recorded[n]
    )

    rendered = render_project(bp, options, values, only=set(regenerate))
    written: list[str] = []
    kept_edit = False
    for f in rendered.files:
        if f.path not in regenerate:
            continue
        path = project_dir / f.path
        want = sha256(f.content)
        try:
            have = sha256(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            have = None
        if have == want:
            meta["files"][f.path] = want
            continue
        if have is not None and have != meta.setdefault("files", {}).get(f.path):
            kept_edit = True
            if changed:
                _warn(
                    ui,
                    f"{f.path} was edited by hand, so packwrap does not regenerate it for the "
                    f"changed variables ({', '.join(changed)}); delete it to regenerate it",
                )
            continue
        write_file_atomic(path, f.content, f.secret)
        meta["files"][f.path] = want
        written.append(f.path)
        if have is None:
            why = "it was missing"
        elif changed:
            why = f"variables changed: {', '.join(changed)}"
        else:
            why = "the blueprint renders it differently now"
        ui.say(f"Regenerated {f.path} ({why})")
    if written or (changed and not kept_edit):
        # Record the values the files now reflect. While a hand-edited file lags behind,
        # keep the old ones so every build repeats the warning.
        meta["values"] = {k: digest_secret(v) if k in sensitive else v for k, v in values.items()}
        write_file_atomic(project_dir / META_FILE, json.dumps(meta, indent=2) + "\n", secret=False)
    return written
