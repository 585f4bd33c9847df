"""`packwrap build [flags] [TEMPLATE or DIR]`: Packer's build, with Packer's flags.

Flags (one dash or two): -var k=v, -var-file f, -only a,b, -except a,b, -force,
-force-install (install even when the install cache has this install),
-on-error=cleanup|abort|ask, -debug, -parallel-builds=N, -timestamp-ui,
-machine-readable, -color=false. Exit 0 when every build succeeded, 1 when one
failed, 130 when interrupted. Ctrl-\\ (SIGQUIT) shows the last console lines.
"""

from __future__ import annotations

import typer

_CONTEXT = {
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    "help_option_names": ["--help"],
}


def register(app: typer.Typer) -> None:
    @app.command("build", context_settings=_CONTEXT)
    def build_cmd(ctx: typer.Context) -> None:
        """Build the images of a template: [TEMPLATE|DIR] (default .) [-var k=v]
        [-var-file f] [-only a,b] [-except a,b] [-force] [-force-install]
        [-on-error=cleanup|abort|ask]
        [-debug] [-parallel-builds=N] [-timestamp-ui] [-machine-readable] [-color=false].
        Logs: <template dir>/.packwrap/logs/ (or $PACKWRAP_LOG_DIR). While it runs,
        Ctrl-\\ shows the last serial console lines of each build."""
        from packwrap.build.session import run_build
        from packwrap.config.schema import ConfigError
        from packwrap.template.cliargs import parse_packer_flags

        flags = parse_packer_flags(list(ctx.args), command="build")
        try:
            code = run_build(flags)
        except ConfigError as exc:
            # every problem, one per line, then the exit code of a failed build
            for problem in exc.problems:
                typer.echo(f"Error: {problem}", err=True)
            raise typer.Exit(1) from None
        if code:
            raise typer.Exit(code)
