"""The Packer template model: load, evaluate, select builds.

`import packwrap.template` is cheap: python-hcl2 (and lark) are imported only
when an HCL file is actually read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.template.model import BlockSpec, BuildSpec, SourceSpec, Template

if TYPE_CHECKING:
    from packwrap.template.loader import VarSetting


def load_template(
    path: str | os.PathLike[str],
    *,
    var_files: Iterable[str | os.PathLike[str]] = (),
    var_args: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    settings: Sequence[VarSetting] | None = None,
    require_builds: bool = True,
) -> Template:
    """Load and evaluate a template file or directory.

    Command-line variables: either `var_files` and `var_args` ("name=value"), applied
    files first then vars, or `settings`, an ordered list of ("file", path) /
    ("var", "name=value") pairs in command-line order (Packer's precedence: the later
    one wins). `settings` replaces `var_files`/`var_args` when given.
    `require_builds=False` accepts a template without a build block (console).
    """
    from packwrap.template.loader import load

    if settings is None:
        settings = [("file", str(f)) for f in var_files] + [("var", a) for a in var_args]
    env = os.environ if env is None else env
    return load(Path(path), settings=list(settings), env=env, require_builds=require_builds)


def select_builds(
    template: Template, only: Iterable[str] = (), except_: Iterable[str] = ()
) -> list[BuildSpec]:
    """The builds named by -only / -except (Packer globs on full build names)."""
    from packwrap.template.select import select

    return select(template.builds, list(only), list(except_))


__all__ = [
    "BlockSpec",
    "BuildSpec",
    "SourceSpec",
    "Template",
    "load_template",
    "select_builds",
]
