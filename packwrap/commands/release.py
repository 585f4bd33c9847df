"""`packwrap release add X.Y --from-transcript FILE`: onboard a release from a console log."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    release_app = typer.Typer(
        help="Manage the installer data of OpenBSD releases.", no_args_is_help=True
    )
    app.add_typer(release_app, name="release")

    @release_app.command("add")
    def add_cmd(
        release: str = typer.Argument(..., help="The new release, X.Y (e.g. 8.1)."),
        from_transcript: Path = typer.Option(
            ...,
            "--from-transcript",
            help="Console log of an install of that release (a build's *.console.log).",
        ),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="Where to write (default: the built-in releases/)."
        ),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    ) -> None:
        """Write a release data file from an install transcript and print its diff."""
        from packwrap.autoinstall.onboard import default_output, onboard
        from packwrap.errors import PackwrapError
        from packwrap.media.cache import atomic_write

        try:
            transcript = from_transcript.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise PackwrapError(
                f"cannot read the transcript: {exc.strerror}", file=str(from_transcript)
            ) from None
        result = onboard(release, transcript, source_name=from_transcript.name)
        target = output or default_output(release)
        if target.exists() and not force:
            raise PackwrapError(f"{target} exists (use --force to overwrite it)")
        typer.echo(result.diff, nl=False)
        atomic_write(target, result.text.encode("utf-8"))
        typer.echo(
            f"Wrote {target}: {result.questions} questions from {from_transcript}, "
            f"{result.unknown} unknown to {result.nearest}; conditions from {result.nearest}"
        )
