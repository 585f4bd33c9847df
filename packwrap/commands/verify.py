"""`packwrap verify DIR --key key.pub`: what `cd DIR && signify -C -p key.pub -x SHA256.sig` checks.

The embedded signature in DIR/SHA256.sig must be the key's (its key number and its
Ed25519 signature); then every file the signed list names (relative to DIR) must have
its digest. Prints `Signature Verified` and `name: OK` per file like signify, `name:
FAIL` for a changed or missing file, and exits 1 when anything failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer


@dataclass(frozen=True)
class FileCheck:
    name: str
    ok: bool


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify_cmd(
        directory: Path = typer.Argument(..., help="Directory holding SHA256.sig"),
        key: Path = typer.Option(..., "--key", help="The signify public key (key.pub)"),
        sigfile: str = typer.Option("SHA256.sig", "--sig", help="Signature file name in DIR"),
    ) -> None:
        """Check a signed output directory: SHA256.sig's signature, then every file listed."""
        from packwrap.errors import PackwrapError

        checks = verify_directory(directory, key, sigfile)
        typer.echo("Signature Verified")
        for c in checks:
            typer.echo(f"{c.name}: {'OK' if c.ok else 'FAIL'}", err=not c.ok)
        failed = sum(not c.ok for c in checks)
        if failed:
            raise PackwrapError(f"{failed} of {len(checks)} files failed verification")


def verify_directory(
    directory: Path, key_file: Path, sigfile: str = "SHA256.sig"
) -> list[FileCheck]:
    """The signature checked (PackwrapError when it does not hold), then each listed file."""
    from packwrap.errors import PackwrapError
    from packwrap.media.checksums import file_digest, parse_checksum_list
    from packwrap.media.signify import load_public_key, verify_embedded

    sig_path = directory / sigfile
    try:
        data = sig_path.read_bytes()
    except OSError as exc:
        raise PackwrapError(f"cannot read {sig_path}: {exc.strerror}") from None
    message = verify_embedded(data, load_public_key(key_file), str(sig_path))
    checks = []
    for lineno, line in enumerate(message.decode("utf-8", "replace").splitlines(), 3):
        if not line.strip():
            continue
        entries = parse_checksum_list(line)
        if len(entries) != 1:
            raise PackwrapError(
                f"unable to parse checksum line {line!r}", file=str(sig_path), line=lineno
            )
        [(name, checksum)] = entries.items()
        try:
            ok = file_digest(directory / name, checksum.algo) == checksum.hexdigest
        except OSError:
            ok = False  # missing or unreadable: signify says FAIL too
        checks.append(FileCheck(name, ok))
    if not checks:
        raise PackwrapError("the signed list names no files", file=str(sig_path))
    return checks
