"""`packwrap blueprints`: list the blueprints with a one-line description each."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("blueprints")
    def blueprints_cmd() -> None:
        """List blueprints with a one-line description each (and their releases)."""
        from packwrap.blueprint.registry import describe_blueprints

        for line in describe_blueprints():
            typer.echo(line)
