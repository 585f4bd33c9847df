"""The packwrap command line: thin; each command lives in packwrap/commands/<name>.py.

Command modules import their heavy dependencies inside the command function, so
`packwrap --help` stays fast (see bench/startup).
"""

from __future__ import annotations

import os
import sys

import typer

from packwrap import __version__
from packwrap.errors import PackwrapError

COMMAND_MODULES = (
    "blueprints",
    "new",
    "validate",
    "lint",
    "regenerate",
    "convert",
    "fetch_iso",
    "build",
    "release",
    "verify",
    "console",
    "cache",
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


def entry() -> None:
    """Console-script entry: main(), then exit without the interpreter's teardown.

    Tearing down ~600 modules and OpenSSL's atexit clean-up costs 20-30 ms after the
    work is done (a sixth of a cached `fetch-iso`). It is skipped only when nothing is
    left for it to do: stdout/stderr flushed, no other non-daemon thread, no live
    weakref.finalize (a TemporaryDirectory still to remove); logging is flushed first.
    """
    rc = main()
    if _nothing_left_at_exit():
        os._exit(rc)
    sys.exit(rc)


def _nothing_left_at_exit() -> bool:
    import threading
    import weakref

    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return False  # e.g. a closed pipe: let the normal exit report it
    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        return False
    # CPython's registry of pending finalizers: private, so typeshed leaves it out
    return not weakref.finalize._registry  # type: ignore[attr-defined]


if __name__ == "__main__":
    entry()
