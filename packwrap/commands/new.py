"""`packwrap new BLUEPRINT [DIR]`: write a Packer project from a blueprint."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("new")
    def new_cmd(
        blueprint: str = typer.Argument(
            ...,
            help="Blueprint, e.g. openbsd-76 (openbsd at release 7.6); see `packwrap blueprints`.",
        ),
        directory: Path = typer.Argument(
            None, help="Project directory to create (default: the blueprint name)."
        ),
        arch: str = typer.Option(None, "--arch", help="amd64 (default), arm64 or i386."),
        builder: str = typer.Option(
            "all", "--builder", help="Sources to write: openbsd-vmm, qemu or all."
        ),
        fmt: str = typer.Option("hcl", "--format", help="hcl (.pkr.hcl) or json (.pkr.json)."),
        var: list[str] = typer.Option(
            None, "--var", help="Set a blueprint variable: NAME=VALUE (repeatable)."
        ),
        root_password: str = typer.Option(
            None,
            "--root-password",
            envvar="PACKWRAP_ROOT_PASSWORD",
            show_envvar=True,
            help="root's password, stored only as a bcrypt hash (prompted on a terminal). "
            "The variable keeps it out of `ps` and shell history.",
        ),
        no_root_password: bool = typer.Option(
            False,
            "--no-root-password",
            help="Lock root's password (13 asterisks); log in with ssh_public_key_file.",
        ),
        pure_packer: bool = typer.Option(
            False, "--pure-packer", help="Write a template Packer itself accepts (no boot_expect)."
        ),
        force: bool = typer.Option(
            False, "--force", help="Write into a non-empty DIR, replacing the blueprint's files."
        ),
    ) -> None:
        """Write a Packer project (template, variables, install.conf) from a blueprint.

        root's password is asked for (twice, not echoed) on a terminal; otherwise give
        --root-password, --var root_password_hash=HASH or --no-root-password.
        """
        import sys

        from packwrap.blueprint import new

        plan = new.plan(
            blueprint,
            directory,
            arch=arch,
            builder=builder,
            fmt=fmt,
            var_args=var or [],
            pure_packer=pure_packer,
            force=force,
        )

        def ask() -> str:
            return typer.prompt(
                "Password for root", hide_input=True, confirmation_prompt=True, err=True
            )

        new.settle_password(
            plan,
            password=root_password,
            no_password=no_root_password,
            prompt=ask if sys.stdin.isatty() else None,
        )
        leftovers = new.leftovers(plan)
        written = new.execute(plan)
        target = plan.target
        for path in leftovers:
            typer.echo(
                f"Warning: {target / path} is from an earlier `packwrap new` and was not "
                "rewritten; delete it if it is not needed",
                err=True,
            )
        typer.echo(
            f"Wrote {plan.options.name} ({', '.join(plan.options.builders)}, "
            f"{plan.options.format}) to {target}/: {len(written)} files."
        )
        typer.echo(f"Next: cd {target} && packwrap fetch-iso   (then see {target}/README.md)")
