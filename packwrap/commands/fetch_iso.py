"""`packwrap fetch-iso`: download install media, verified by signify + SHA256, into the cache."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("fetch-iso")
    def fetch_iso_cmd(
        release: str = typer.Option(
            None, "--release", metavar="X.Y", help="OpenBSD release, e.g. 7.6."
        ),
        arch: str = typer.Option(
            None, "--arch", metavar="ARCH", help="Architecture (default amd64)."
        ),
        mirror: list[str] = typer.Option(
            None, "--mirror", metavar="URL", help="Mirror base URL (repeatable, tried in order)."
        ),
        file: str = typer.Option(
            None,
            "--file",
            metavar="NAME|URL",
            help="Media file name (default install<XY>.iso) or a full URL.",
        ),
        signify_key: Path = typer.Option(
            None, "--signify-key", metavar="PATH", help="signify public key (openbsd-XY-base.pub)."
        ),
        output: Path = typer.Option(
            None,
            "--output",
            metavar="DIR",
            help="Directory to place the verified file in (hard link).",
        ),
        checksum: str = typer.Option(
            None,
            "--checksum",
            metavar="CHECKSUM",
            help="Expected checksum, Packer iso_checksum forms (sha256:..., file:URL, none).",
        ),
        insecure_unsigned: bool = typer.Option(
            False, "--insecure-unsigned", help="Without a signify key, trust the unsigned SHA256."
        ),
        sets: bool = typer.Option(
            False,
            "--sets",
            help="Fetch the release's sets and SHA256.sig (signify-verified) into the cache "
            "instead of the medium: the local mirror a build serves for sets_location = "
            '"http" (in such a project plain fetch-iso fetches both).',
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the verified path."),
        force: bool = typer.Option(
            False, "--force", help="Replace a different file at --output; refetch SHA256.sig."
        ),
    ) -> None:
        """Download install media, verify it (signify + SHA256), cache it, print its path."""
        from packwrap.media.command import run

        run(
            release=release,
            arch=arch,
            mirrors=list(mirror or []),
            file=file,
            signify_key=signify_key,
            output=output,
            checksum=checksum,
            insecure_unsigned=insecure_unsigned,
            quiet=quiet,
            force=force,
            sets=sets,
        )
