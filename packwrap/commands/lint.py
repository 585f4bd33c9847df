"""`packwrap lint [FILE]`: check a response file against the installer's real questions."""

from __future__ import annotations

from pathlib import Path

import typer

DEFAULT_FILES = ("http/install.conf.pkr.in", "http/install.conf")


def _project_record(project_dir: Path) -> dict:
    import json

    meta = project_dir / ".packwrap" / "project.json"
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _project_release(project_dir: Path) -> str | None:
    """The release of a blueprint project: its record, else its variables."""
    release = _project_record(project_dir).get("release")
    if release:
        return str(release)
    try:
        from packwrap.template import load_template
    except ImportError:
        return None
    try:
        template = load_template(project_dir)
    except Exception:  # not a template directory, or a broken one: lint still works
        return None
    for name in ("release", "openbsd_release", "os_version"):
        value = template.variables.get(name)
        if value:
            return str(value)
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
        from packwrap.autoinstall.lint import lint
        from packwrap.errors import PackwrapError, UsageError

        if file is None:
            found = [Path(f) for f in DEFAULT_FILES if Path(f).is_file()]
            if not found:
                raise UsageError(f"no response file given and none of {', '.join(DEFAULT_FILES)}")
            file = found[0]
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PackwrapError(f"cannot read: {exc}", file=str(file)) from None
        project = file.resolve().parent
        project = project.parent if project.name == "http" else project
        if release is None:
            release = _project_release(project) or "7.6"
        if arch is None:  # the project's installer asks its own arch's questions
            arch = str(_project_record(project).get("arch") or "amd64")
        context = None
        values = _project_record(project).get("values")
        if isinstance(values, dict):  # the VM the project describes (interface, disks)
            from packwrap.autoinstall.render import answers_context

            try:
                context = answers_context(values, release, arch)
            except PackwrapError:
                context = None
        if not (project / "site").is_dir():  # nothing for a site round to fetch
            from dataclasses import replace

            from packwrap.autoinstall.simulate import InstallContext

            context = replace(context or InstallContext(), docroot_sets=())
        findings = lint(text, release, path=str(file), answers_context=context, arch=arch)
        for finding in findings:
            typer.echo(str(finding), err=finding.is_error)
        errors = sum(f.is_error for f in findings)
        warnings = len(findings) - errors
        if errors:
            typer.echo(f"{file}: {errors} error(s), {warnings} warning(s)", err=True)
            raise typer.Exit(1)
        typer.echo(f"{file}: OK for OpenBSD {release}/{arch} ({warnings} warning(s))")
