"""`packwrap convert TEMPLATE.json [-o OUT.pkr.hcl] [--force]`: legacy JSON -> HCL2."""

from __future__ import annotations

from pathlib import Path

import typer


def default_output(template: Path) -> Path:
    """seed.json -> seed.pkr.hcl (next to the template)."""
    name = template.name
    stem = name[: -len(".json")] if name.endswith(".json") else name
    return template.with_name(stem + ".pkr.hcl")


def register(app: typer.Typer) -> None:
    @app.command("convert")
    def convert_cmd(
        template: Path = typer.Argument(..., help="Legacy JSON template to convert."),
        output: Path = typer.Option(
            None, "--output", "-o", help="HCL2 file to write (default: TEMPLATE.pkr.hcl)."
        ),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
    ) -> None:
        """Convert a legacy JSON template to HCL2 (like `packer hcl2_upgrade`)."""
        from packwrap.atomicfile import atomic_write
        from packwrap.errors import PackwrapError, UsageError
        from packwrap.template.convert import convert_legacy
        from packwrap.template.loader import read_text

        if not template.is_file():
            raise UsageError("no such template file", file=str(template))
        out = output or default_output(template)
        if not out.name.endswith(".pkr.hcl"):
            raise UsageError("the output file name must end in .pkr.hcl", file=str(out))
        if out.exists() and not force:
            raise PackwrapError("already exists; use --force to overwrite it", file=str(out))
        text, warnings = convert_legacy(read_text(template), str(template))
        for w in warnings:
            typer.echo(f"Warning: {w}", err=True)
        atomic_write(out, text, mode=0o644, keep_mode=True)
        typer.echo(f"Wrote {out}")
