"""`packwrap regenerate [DIR] [-var k=v] [-var-file f] [-force]`: write a blueprint
project's generated docroot files (http/install.conf.pkr.in, http/disklabel) for its
current variables.

The one command besides `new` that writes http/: `build` serves out-of-date files from
its private overlay and `validate`/`lint` check them in memory. A hand-edited file is
kept (with a warning) unless -force; every file is written atomically, then
.packwrap/project.json (packwrap/blueprint/regenerate.py).
"""

from __future__ import annotations

import typer

_CONTEXT = {
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    "help_option_names": ["--help"],
}


class _Ui:
    warned = False

    def say(self, message: str) -> None:
        typer.echo(message)

    def error(self, message: str) -> None:
        self.warned = True
        typer.echo(message, err=True)


def register(app: typer.Typer) -> None:
    @app.command("regenerate", context_settings=_CONTEXT)
    def regenerate_cmd(ctx: typer.Context) -> None:
        """Rewrite the generated files of a project made by `packwrap new` for its
        variables: [DIR] (default .) [-var k=v] [-var-file f] [-force] (-force also
        replaces hand-edited files)."""
        from pathlib import Path

        from packwrap.blueprint.regenerate import regenerate
        from packwrap.plugins import boots_efi
        from packwrap.template import load_template
        from packwrap.template.cliargs import parse_packer_flags

        flags = parse_packer_flags(list(ctx.args), command="regenerate")
        path = Path(flags.path or ".")
        template = load_template(path, settings=flags.settings)
        ui = _Ui()
        efi = boots_efi(template.builds)
        written = regenerate(template.dir, template.variables, ui, force=flags.force, efi=efi)
        if not written and not ui.warned:
            typer.echo("The generated files are up to date.")
