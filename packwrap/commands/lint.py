"""`packwrap lint [FILE]`: check a response file against the installer's real questions.

Without FILE it lints what the build would serve (packwrap/blueprint/lint_context.py, the
same context as `packwrap validate`). It never writes a file.
"""

from __future__ import annotations

from pathlib import Path

import typer


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
        from packwrap.errors import UsageError

        project = lint_context.project_of(file) if file is not None else Path.cwd()
        target, generated = lint_context.for_lint_command(
            project,
            file=file,
            release=release,
            warn=lambda text: typer.echo(f"Warning: {text}", err=True),
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
