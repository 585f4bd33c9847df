"""The signify post-processor: `SHA256` and `SHA256.sig` beside the artifact, OpenBSD's way.

`SHA256` holds one `SHA256 (name) = <hex>` line per artifact file (names relative to
the directory both files go to, sorted, as OpenBSD's release SHA256); `SHA256.sig` is
that text signed in `signify -S -e` form, so `cd DIR && signify -C -p key.pub -x
SHA256.sig` (or `packwrap verify DIR --key key.pub`) checks the signature and every
file. Options: `private_key_file` (a signify secret key, required), `passphrase_env`
(the environment variable holding its passphrase; when it is unset packwrap asks on
the terminal; `signify -G -n` keys need none), `output` (the directory, default the
one holding the artifact's files, or their common parent; the default passphrase
variable is PACKWRAP_SIGNIFY_PASSPHRASE).

The key is unlocked before the build starts (`unlock`, called by the build session),
so a missing passphrase or a wrong one fails in seconds, not after the install. Both
files are written only once everything is hashed and signed; an existing `SHA256` or
`SHA256.sig` is replaced only under -force.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from packwrap.build.artifact import Artifact
from packwrap.config.schema import STRING, Config, Option, Schema
from packwrap.errors import PackwrapError

if TYPE_CHECKING:
    from packwrap.media.signify import SigningKey
    from packwrap.postprocess.base import PPContext

BUILDER_ID = "packwrap.post-processor.signify"
DEFAULT_PASSPHRASE_ENV = "PACKWRAP_SIGNIFY_PASSPHRASE"
LIST_NAME = "SHA256"
SIG_NAME = "SHA256.sig"

#: Asks for a passphrase without echo; None when nobody can answer (no terminal).
PromptFn = Callable[[str], "str | None"]


def _check(config: Config, problem: Callable[[str, str | None], None]) -> None:
    from packwrap.media.signify import load_secret_key

    path = config.private_key_file
    if not path:
        return  # the schema reports the missing required option
    try:
        load_secret_key(Path(path))
    except PackwrapError as exc:
        problem(f"private_key_file: {exc}", "private_key_file")


def terminal_prompt(text: str) -> str | None:
    """getpass on the controlling terminal, or None when there is none."""
    if not sys.stdin or not sys.stdin.isatty():
        return None
    import getpass

    try:
        return getpass.getpass(text)
    except EOFError:
        return None


class SignifyPostProcessor:
    type_name: ClassVar[str] = "signify"
    force_keep: ClassVar[bool] = True
    schema: ClassVar[Schema] = Schema(
        [
            Option("private_key_file", STRING, None, required=True),
            Option("passphrase_env", STRING, DEFAULT_PASSPHRASE_ENV),
            Option("output", STRING, ""),
        ],
        [_check],
    )

    def __init__(self) -> None:
        self._key: SigningKey | None = None

    def unlock(
        self, config: Config, env: Mapping[str, str], prompt: PromptFn = terminal_prompt
    ) -> None:
        """Decrypt the key once: from $passphrase_env, else by asking, else an error."""
        from packwrap.media.signify import load_secret_key, unlock

        source = str(config.private_key_file)
        key = load_secret_key(Path(source))
        passphrase = None
        if key.needs_passphrase:
            var = config.passphrase_env or DEFAULT_PASSPHRASE_ENV
            passphrase = env.get(var) or prompt(f"passphrase for {source}: ")
            if not passphrase:
                raise PackwrapError(
                    f"the signify key needs a passphrase: set {var} or run from a terminal",
                    file=source,
                )
        self._key = unlock(key, passphrase, source)

    def run(self, config: Config, artifact: Artifact, ctx: PPContext) -> tuple[Artifact, bool]:
        from packwrap.media.signify import sign_embedded

        if self._key is None:
            self.unlock(config, os.environ)
        assert self._key is not None
        directory = _output_dir(config, artifact, ctx)
        targets = [directory / LIST_NAME, directory / SIG_NAME]
        existing = [str(t) for t in targets if t.exists()]
        if existing and not ctx.force:
            raise PackwrapError(f"signify: {existing[0]} already exists (use -force to replace)")
        names = _listed_names(artifact, directory, ctx.cwd, set(map(str, targets)))
        listing = _sha256_list(names, ctx).encode("utf-8")
        signed = sign_embedded(listing, self._key)
        _write_both(targets, [listing, signed])
        ctx.ui.message(f"Signed {len(names)} files: {targets[1]}")
        files = [*artifact.files, *(str(t) for t in targets if str(t) not in artifact.files)]
        return artifact.with_files(BUILDER_ID, files), True


def _output_dir(config: Config, artifact: Artifact, ctx: PPContext) -> Path:
    """`output` (rendered like checksum's), else the directory of the artifact's files."""
    if config.output:
        from packwrap.postprocess.output import render_output

        return render_output(config.output, artifact, ctx, "signify")
    if not artifact.files:
        raise PackwrapError("signify: the artifact has no files to sign")
    parents = [os.path.abspath(os.path.dirname(os.path.join(ctx.cwd, f))) for f in artifact.files]
    return Path(os.path.commonpath(parents))


def _listed_names(artifact: Artifact, directory: Path, cwd: Path, own: set[str]) -> dict[str, str]:
    """{name as signify -C opens it from `directory` (relative; no blank or ')', which
    signify -C cannot parse back): the file's absolute path}, sorted by name."""
    names = {}
    for f in artifact.files:
        path = os.path.abspath(os.path.join(cwd, f))
        if path in own:
            continue  # an earlier signify's own files: re-signed files, not listed ones
        if not os.path.isfile(path):
            raise PackwrapError(f"signify: artifact file {path} is missing")
        name = os.path.relpath(path, directory)
        if any(c.isspace() or c == ")" for c in name):
            # signify.c rev 1.119 ends a name at a blank; signify-openbsd 31 fails on a )
            raise PackwrapError(
                f"signify: cannot list {name!r}: signify -C cannot read a name with a blank or ')'"
            )
        names[name] = path
    return dict(sorted(names.items()))


def _sha256_list(names: dict[str, str], ctx: PPContext) -> str:
    from packwrap.media.checksums import file_digest

    check = lambda: ctx.check_cancelled("post-processor 'signify'")  # noqa: E731
    lines = []
    for name, path in names.items():
        try:
            digest = file_digest(Path(path), "sha256", check)
        except OSError as exc:
            raise PackwrapError(f"signify: cannot read {path}: {exc.strerror}") from None
        lines.append(f"SHA256 ({name}) = {digest}\n")
    return "".join(lines)


def _write_both(targets: list[Path], contents: list[bytes]) -> None:
    """Both files or neither: the first is removed again when the second cannot be written."""
    from packwrap.atomicfile import atomic_write, with_umask

    written: list[Path] = []
    try:
        for target, data in zip(targets, contents, strict=True):
            atomic_write(target, data, mode=with_umask(0o644))
            written.append(target)
    except BaseException as exc:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        if isinstance(exc, OSError):
            raise PackwrapError(f"signify: cannot write {exc.filename}: {exc.strerror}") from None
        raise
