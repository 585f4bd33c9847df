"""`packwrap blueprints`: list the blueprints with a one-line description each."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("blueprints")
    def blueprints_cmd() -> None:
        """List blueprints with a one-line description each."""
        from packwrap.blueprint.registry import list_blueprints

        for bp in list_blueprints():
            typer.echo(f"{bp.name:<16} {bp.description}")
