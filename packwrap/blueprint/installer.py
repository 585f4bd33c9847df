"""The blueprint engine's only door into packwrap.autoinstall (response files, releases).

Kept in one place so the engine does not care how the autoinstall package shapes its
data (dataclasses or dicts), and so tests can replace these functions. The autoinstall
modules are imported inside the functions: `packwrap --help` must not pay for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from packwrap.blueprint.model import Variable


def known_releases() -> list[str]:
    """Releases the autoinstall data knows, oldest first ("7.5", ..., "snapshots")."""
    from packwrap.autoinstall.release import known_releases as releases_known

    return list(dict.fromkeys(str(r) for r in releases_known()))


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def installer_variables() -> list[Variable]:
    """The installer's answers as blueprint variables (name, type, default, help...)."""
    from packwrap.autoinstall.variables import installer_variables as definitions

    out: list[Variable] = []
    for item in definitions():
        choices = _get(item, "choices")
        out.append(
            Variable(
                name=str(_get(item, "name")),
                type=str(_get(item, "type", "string") or "string"),
                default=_get(item, "default"),
                help=str(_get(item, "help", "") or _get(item, "description", "") or ""),
                sensitive=bool(_get(item, "sensitive", False)),
                choices=list(choices) if choices else None,
            )
        )
    return out


def render_install_conf(
    values: Mapping[str, Any], release: str, arch: str | None = None, *, efi: bool = False
) -> str:
    from packwrap.autoinstall.render import render_install_conf as render

    return render(dict(values), release, arch=arch, efi=efi)


def render_disklabel(layout: Any) -> str:
    from packwrap.autoinstall.disklabel import render_disklabel as render

    return render(layout)


def hash_password(password: str) -> str:
    from packwrap.autoinstall.passwords import hash_password as bcrypt_hash

    return bcrypt_hash(password)


def check_password_value(value: str, name: str) -> None:
    """The installer's rule for a password answer (bcrypt, cost >= 10, or the lock-out)."""
    from packwrap.autoinstall.passwords import check_password_value as check

    check(value, name)


def answers_context(
    values: Mapping[str, Any] | None,
    release: str,
    *,
    site_dir: bool,
    arch: str | None = None,
    builders: tuple[str, ...] = (),
    efi: bool = False,
) -> Any:
    """The machine a response file is checked against (interface, disks, site sets, the
    builders' network, UEFI); with no site/ directory the build serves no site set. None
    when the values cannot say."""
    from dataclasses import replace

    from packwrap.autoinstall.render import answers_context as context_for
    from packwrap.autoinstall.simulate import InstallContext
    from packwrap.errors import PackwrapError

    context = None
    if values is not None:
        try:
            context = context_for(values, release, arch)
        except PackwrapError:
            context = None
    if not site_dir:
        context = replace(context or InstallContext(), docroot_sets=())
    if efi:
        context = replace(context or InstallContext(), efi=True)
    if builders or values is not None:
        # QEMU's hermetic_network is the only network that reaches nothing but the build.
        hermetic = "qemu" in (builders or ("qemu",)) and _true(
            (values or {}).get("hermetic_network")
        )
        context = replace(context or InstallContext(), builders=builders, hermetic=hermetic)
    return context


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def lint_response_file(
    text: str, release: str, *, path: str, context: Any, arch: str | None = None
) -> list[Any]:
    """Findings (line, severity, message) for a response file, against `arch`'s installer."""
    from packwrap.autoinstall.lint import lint

    return lint(text, release, path=path, answers_context=context, arch=arch)
