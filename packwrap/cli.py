"""The packwrap command line: thin; each command lives in packwrap/commands/<name>.py.

Command modules import their heavy dependencies inside the command function, so
`packwrap --help` stays fast (see bench/startup).
"""

from __future__ import annotations

import sys

import typer

from packwrap import __version__
from packwrap.errors import PackwrapError

COMMAND_MODULES = (
    "blueprints",
    "new",
    "validate",
    "lint",
    "convert",
    "fetch_iso",
    "build",
)

app = typer.Typer(
    name="packwrap",
    help="Build OpenBSD virtual machine images unattended, from Packer templates.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"packwrap {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Build OpenBSD virtual machine images unattended, from Packer templates."""


def _register_commands() -> None:
    import importlib

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"packwrap.commands.{name}")
        except ModuleNotFoundError as exc:  # a command still being written
            if exc.name == f"packwrap.commands.{name}":
                continue
            raise
        module.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Entry point: PackwrapError becomes one line on stderr and its exit code."""
    try:
        # with standalone_mode=False click returns typer.Exit's code instead of raising
        rc = app(args=argv, standalone_mode=False)
        if isinstance(rc, int):
            return rc
    except PackwrapError as exc:
        typer.echo(f"Error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("Error: interrupted", err=True)
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        typer.echo("Error: aborted", err=True)
        return 1
    except typer.TyperException as exc:  # usage errors (unknown option, missing argument)
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        return int(getattr(exc, "exit_code", 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
