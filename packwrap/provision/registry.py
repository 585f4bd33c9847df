"""Provisioner types packwrap runs itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from packwrap.errors import PackwrapError

if TYPE_CHECKING:
    from packwrap.provision.base import Provisioner


def provisioner_class(
    type_name: str, *, file: str | None = None, line: int | None = None
) -> type[Provisioner]:
    from packwrap.provision.breakpoint import BreakpointProvisioner
    from packwrap.provision.file import FileProvisioner
    from packwrap.provision.shell import ShellProvisioner

    known = {p.type_name: p for p in (ShellProvisioner, FileProvisioner, BreakpointProvisioner)}
    try:
        return known[type_name]
    except KeyError:
        names = ", ".join(sorted(known))
        raise PackwrapError(
            f"provisioner type {type_name!r} is not supported by packwrap (supported: {names})",
            file=file,
            line=line,
        ) from None
