"""The one lint context of `packwrap lint` and `packwrap validate`: which response file,
with which text, for which release, against which machine.

Without an explicit file it is what the build would serve: http/install.conf.pkr.in (else
http/install.conf), and for a blueprint project whose file is out of date with the
variables, the text rendered in memory (regenerate.plan). Nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packwrap.blueprint import installer
from packwrap.blueprint.record import read_record, resolve_release
from packwrap.blueprint.regenerate import BlueprintUnavailable, Generated, plan
from packwrap.errors import PackwrapError

if TYPE_CHECKING:
    from packwrap.template import Template

DEFAULT_FILES = ("http/install.conf.pkr.in", "http/install.conf")
DEFAULT_RELEASE = "7.6"
DEFAULT_ARCH = "amd64"


@dataclass(frozen=True)
class LintTarget:
    path: Path  # the file the findings name
    text: str  # its text, or what the build would serve in its place
    release: str
    context: Any  # InstallContext: the machine the answers are checked against
    rendered: bool  # the text is rendered from the variables, not read from `path`
    arch: str = "amd64"  # the installer's arch (arm64, i386 ask their own questions)


def project_of(file: Path) -> Path:
    """The project a response file belongs to: its directory, or the parent of http/."""
    here = file.resolve().parent
    return here.parent if here.name == "http" else here


def lint_target(
    project_dir: Path,
    *,
    file: Path | None = None,
    release: str | None = None,
    variables: Mapping[str, Any] | None = None,
    generated: Generated | None = None,
    arch: str | None = None,
    efi: bool = False,
) -> LintTarget | None:
    """The response file to lint, or None when the project has none; `efi`: a build of
    the project boots the installer through UEFI."""
    record = generated.record if generated is not None else read_record(project_dir)
    rendered = None
    if file is None:
        for rel in DEFAULT_FILES:
            rendered = generated.served_text(rel) if generated is not None else None
            if rendered is not None or (project_dir / rel).is_file():
                file = project_dir / rel
                break
        else:
            return None
    if rendered is None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PackwrapError(f"cannot read: {exc}", file=str(file)) from None
    else:
        text = rendered
    resolved = resolve_release(
        flag=release, record=record, variables=variables, default=DEFAULT_RELEASE
    )
    assert resolved is not None
    values = generated.values if generated is not None else (record.values if record else None)
    arch = arch or (record.arch if record else None) or DEFAULT_ARCH  # --arch, the project's
    site_dir = (project_dir / "site").is_dir()
    builders = tuple(str(b) for b in (record.data.get("builders") or ())) if record else ()
    context = installer.answers_context(
        values, resolved, site_dir=site_dir, arch=arch, builders=builders, efi=efi
    )
    return LintTarget(file, text, resolved, context, rendered is not None, arch)


def for_lint_command(
    project_dir: Path,
    *,
    file: Path | None,
    release: str | None,
    warn: Callable[[str], None],
    arch: str | None = None,
) -> tuple[LintTarget | None, Generated | None]:
    """`packwrap lint`'s target: without a file, what the build would serve for the
    project's variables (its template, loaded here); a template that does not load or a
    blueprint that cannot be loaded leaves the file on disk (validate reports why). Variables
    the blueprint refuses to render are a PackwrapError, as the build refuses them."""
    record = read_record(project_dir)
    template = None
    if file is None or (release is None and (record is None or not record.release)):
        template = _template(project_dir)
    variables = template.variables if template is not None else None
    # An explicit file of a project that knows its release is checked without loading the
    # template (lint's start-up time): then against a BIOS machine.
    efi = _boots_efi(template)
    generated = None
    if file is None and variables is not None:
        try:
            generated = plan(project_dir, variables, efi=efi)
        except BlueprintUnavailable as exc:
            warn(str(exc))
    target = lint_target(
        project_dir,
        file=file,
        release=release,
        variables=variables,
        generated=generated,
        arch=arch,
        efi=efi,
    )
    return target, generated


def _template(project_dir: Path) -> Template | None:
    try:
        from packwrap.template import load_template

        return load_template(project_dir)
    except Exception:  # noqa: BLE001 - not a template directory, or a broken one
        return None


def _boots_efi(template: Template | None) -> bool:
    """A build of the template boots through UEFI (its builder's rule)."""
    if template is None:
        return False
    from packwrap.plugins import boots_efi

    return boots_efi(template.builds)


def lint(target: LintTarget) -> list[Any]:
    return installer.lint_response_file(
        target.text,
        target.release,
        path=str(target.path),
        context=target.context,
        arch=target.arch,
    )
