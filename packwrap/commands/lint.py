"""`packwrap lint [FILE]`: check a response file against the installer's real questions.

Without FILE it lints what the build would serve (packwrap/blueprint/lint_context.py, the
same context as `packwrap validate`). It never writes a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer


def _variables(project_dir: Path) -> Mapping[str, Any] | None:
    """The project's evaluated variables; None when it is no template directory, or a
    broken one (lint still works on the file)."""
    try:
        from packwrap.template import load_template

        return load_template(project_dir).variables
    except Exception:  # noqa: BLE001 - any template problem: validate reports it, not lint
        return None


def register(app: typer.Typer) -> None:
    @app.command("lint")
    def lint_cmd(
        file: Path | None = typer.Argument(
            None, help="Response file (default: ./http/install.conf.pkr.in or ./http/install.conf)."
        ),
        release: str | None = typer.Option(
            None, "--release", help="OpenBSD release (default: the project's, else 7.6)."
        ),
        arch: str | None = typer.Option(
            None, "--arch", help="amd64, arm64 or i386 (default: the project's, else amd64)."
        ),
    ) -> None:
        """Check an install.conf against the release's installer questions and matching rules."""
        from dataclasses import replace

        from packwrap.blueprint import lint_context
        from packwrap.blueprint.record import read_record
        from packwrap.blueprint.regenerate import plan
        from packwrap.errors import PackwrapError, UsageError

        project = lint_context.project_of(file) if file is not None else Path.cwd()
        record = read_record(project)
        variables = None
        if file is None or (release is None and (record is None or not record.release)):
            variables = _variables(project)
        generated = None
        if file is None and variables is not None:
            try:
                generated = plan(project, variables)
            except PackwrapError as exc:  # lint the file on disk, and say why
                typer.echo(f"Warning: {exc}", err=True)
        target = lint_context.lint_target(
            project,
            file=file,
            release=release,
            variables=variables,
            generated=generated,
            arch=arch,
        )
        if target is None:
            files = ", ".join(lint_context.DEFAULT_FILES)
            raise UsageError(f"no response file given and none of {files}")
        shown = Path(file) if file is not None else target.path.relative_to(project)
        target = replace(target, path=shown)
        if generated is not None:
            for note in generated.notes():
                typer.echo(f"Note: {note}")
        findings = lint_context.lint(target)
        for finding in findings:
            typer.echo(str(finding), err=finding.is_error)
        errors = sum(f.is_error for f in findings)
        warnings = len(findings) - errors
        if errors:
            typer.echo(f"{shown}: {errors} error(s), {warnings} warning(s)", err=True)
            raise typer.Exit(1)
        what = f"OpenBSD {target.release}/{target.arch}"
        typer.echo(f"{shown}: OK for {what} ({warnings} warning(s))")
