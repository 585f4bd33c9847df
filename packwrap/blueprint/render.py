"""Render a blueprint instance into project files (in memory; project.py writes them).

Rules for the files under a blueprint's `project/`:
- `X.j2` is rendered with Jinja2 to `X`; other files are copied as they are.
- `__name__` in a path becomes the instance name (`openbsd-76.pkr.hcl`); `dot_x` becomes `.x`.
- names starting with `_` are partials for `{% include %}`, not output files; a child
  blueprint overrides a partial by shipping one with the same path.
- `{% extends "<parent>/<path>" %}` reaches a parent blueprint's file by its name.
- a template that renders to nothing is not written (e.g. a file for one builder only).
- `*.pkr.hcl` / `*.pkrvars.hcl` output is aligned like `packer fmt`; with --format json
  the `.pkr.hcl` files become `.pkr.json` (HCL2 JSON syntax).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packwrap.blueprint import hcl, installer
from packwrap.blueprint.model import Blueprint, Variable
from packwrap.blueprint.registry import release_short
from packwrap.errors import PackwrapError
from packwrap.template import hcl_emit, hcl_fmt

if TYPE_CHECKING:  # jinja2 loads only when a blueprint is rendered
    from jinja2.sandbox import SandboxedEnvironment

BUILDERS = ("openbsd-vmm", "qemu")


@dataclass
class Options:
    """Everything `new` decided besides variable values."""

    name: str
    release: str | None
    arch: str
    builders: list[str]
    format: str = "hcl"  # or "json"
    pure_packer: bool = False
    base_dir: Path | None = None  # relative file names in values: from here (default CWD)
    efi: bool = False  # a build boots the installer through UEFI (the disk answer needs it)


@dataclass
class RenderedFile:
    path: str  # project-relative, posix
    content: str
    secret: bool = False  # holds a sensitive value: written 0600


@dataclass
class Rendered:
    files: list[RenderedFile] = field(default_factory=list)

    def get(self, path: str) -> RenderedFile | None:
        return next((f for f in self.files if f.path == path), None)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def emitted_variables(bp: Blueprint, options: Options) -> list[Variable]:
    """The variables this project declares: filtered by builder and by --pure-packer."""
    out = []
    for var in bp.variables.values():
        if var.builders and not set(var.builders) & set(options.builders):
            continue
        if var.packwrap_only and options.pure_packer:
            continue
        if var.pure_packer_only and not options.pure_packer:
            continue
        out.append(var)
    return out


def installer_values(values: Mapping[str, Any], base_dir: Path | None = None) -> dict[str, Any]:
    """Values as render_install_conf wants them: the key in `ssh_public_key_file` becomes
    the answer `root_ssh_key` (unless that is set directly)."""
    out = dict(values)
    key_file = values.get("ssh_public_key_file")
    if key_file and not out.get("root_ssh_key"):
        path = Path(str(key_file)).expanduser()
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            key = path.read_text().strip()
        except OSError as exc:
            raise PackwrapError(f"ssh_public_key_file {str(key_file)!r}: {exc.strerror}") from None
        if "\n" in key or not key.startswith(("ssh-", "ecdsa-", "sk-")):
            raise PackwrapError(
                f"ssh_public_key_file {str(key_file)!r}: expected one OpenSSH public key line"
            )
        out["root_ssh_key"] = key
    if values.get("communicator") == "ssh" and (values.get("ssh_username") or "root") == "root":
        _root_login_for_provisioning(out, values, base_dir)
    return out


#: Rendered per build by the HTTP server: the build's temporary public key.
TEMPORARY_KEY = "{{ .SSHPublicKey }}"


def _root_login_for_provisioning(
    out: dict[str, Any], values: Mapping[str, Any], base_dir: Path | None
) -> None:
    """communicator = "ssh" as root: the installed system must accept the build's key.

    - no root key and no ssh_private_key_file: the answer is `{{ .SSHPublicKey }}`, the
      temporary key packwrap makes per build (removed again before shutdown);
    - ssh_private_key_file without a root key: its public half (`<file>.pub`) is the answer;
    - a root key (ssh_public_key_file / root_ssh_key) needs ssh_private_key_file, the
      matching private key (`packwrap new` fills it in when `<key>.pub` has a sibling):
      the installer takes one root key, so a temporary key could not be added to it.
    PermitRootLogin `no` (the installer's default) would refuse root: it becomes
    `prohibit-password` (keys only).
    """
    private = str(values.get("ssh_private_key_file") or "")
    if not out.get("root_ssh_key"):
        if not private:
            out["root_ssh_key"] = TEMPORARY_KEY
        else:
            path = Path(private + ".pub").expanduser()
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            try:
                out["root_ssh_key"] = path.read_text().strip()
            except OSError:
                raise PackwrapError(
                    f'communicator = "ssh" with ssh_private_key_file {private!r}: its public '
                    f"key {private}.pub is needed for root's authorized_keys (or set "
                    "ssh_public_key_file)"
                ) from None
    elif not private:
        raise PackwrapError(
            'communicator = "ssh" with a root key (ssh_public_key_file): set '
            "ssh_private_key_file to the matching private key, or leave the root key empty "
            "for a temporary key per build"
        )
    if out.get("root_ssh_login", "no") == "no":
        out["root_ssh_login"] = "prohibit-password"


def _environment(
    bp: Blueprint, options: Options, values: Mapping[str, Any]
) -> SandboxedEnvironment:
    from jinja2 import (
        ChoiceLoader,
        FileSystemLoader,
        PrefixLoader,
        StrictUndefined,
    )
    from jinja2.sandbox import SandboxedEnvironment

    by_name = {}
    for d in bp.chain:  # the deepest of equal names wins, so `openbsd` can extend `openbsd`
        by_name[d.name] = FileSystemLoader(str(d.path / "project"))
    loader = ChoiceLoader(
        [FileSystemLoader([str(p) for p in bp.template_dirs]), PrefixLoader(by_name)]
    )
    env = SandboxedEnvironment(
        loader=loader,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["hcl"] = hcl_emit.literal
    env.filters["hcl_list"] = hcl_emit.multiline_list
    env.filters["quote"] = hcl_emit.quote
    env.filters["hcl_type"] = hcl.type_expr
    env.filters["source_ref"] = lambda builder, name: f"source.{builder}.{name}"

    def install_conf() -> str:
        if not options.release:
            raise PackwrapError(f"blueprint {bp.name!r}: install_conf() needs a release")
        return installer.render_install_conf(
            installer_values(values, options.base_dir),
            options.release,
            arch=options.arch,
            efi=options.efi,
        )

    def disklabel() -> str:
        # An empty layout means the installer's auto layout: no template file at all.
        layout = values.get("disklabel_layout")
        return installer.render_disklabel(layout) if layout else ""

    env.globals.update(install_conf=install_conf, disklabel=disklabel)
    return env


def context(bp: Blueprint, options: Options, values: Mapping[str, Any]) -> dict[str, Any]:
    from packwrap import __version__

    arches = bp.data.get("arches", {})
    arch_info = arches.get(options.arch, {})
    return {
        **bp.data,
        # An arch's own boot table (arm64: no `set tty com0` at efiboot) over the default.
        "boot": {**bp.data.get("boot", {}), **arch_info.get("boot", {})},
        "blueprint": bp.name,
        "name": options.name,
        "release": options.release or "",
        "release_short": release_short(options.release),
        "arch": options.arch,
        "arch_info": arch_info,
        "builders": options.builders,
        "format": options.format,
        "pure_packer": options.pure_packer,
        "variables": emitted_variables(bp, options),
        "values": dict(values),
        "packwrap_version": __version__,
    }


def _is_partial(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__name__")


def output_path(template_path: str, options: Options) -> str:
    out = template_path.replace("__name__", options.name)
    # `dot_x` -> `.x`: dot files in a blueprint would act on the blueprint's own tree
    out = "/".join("." + p[4:] if p.startswith("dot_") else p for p in out.split("/"))
    return out[:-3] if out.endswith(".j2") else out


def render_project(
    bp: Blueprint,
    options: Options,
    values: Mapping[str, Any],
    *,
    defaults: Mapping[str, Any] | None = None,
    only: set[str] | None = None,
) -> Rendered:
    """Render every output file (or only the output paths in `only`).

    `defaults` are the instance's defaults (the `variable` blocks' `default`); `values`
    the chosen values (pkrvars, install.conf)."""
    env = _environment(bp, options, values)
    ctx = context(bp, options, values)
    ctx["defaults"] = dict(defaults if defaults is not None else values)
    secrets = [
        str(values[v.name])
        for v in bp.variables.values()
        if v.sensitive and values.get(v.name) and len(str(values[v.name])) >= 8
    ]
    rendered = Rendered()
    for rel, source in sorted(bp.files.items()):
        if any(_is_partial(part) for part in rel.split("/")):
            continue
        path = output_path(rel, options)
        if only is not None and path not in only:
            continue
        if rel.endswith(".j2"):
            try:
                text = env.get_template(rel).render(ctx)
            except PackwrapError:
                raise
            except Exception as exc:  # jinja2 errors: name the template and line
                line = getattr(exc, "lineno", None)
                raise PackwrapError(f"template error: {exc}", file=str(source), line=line) from None
        else:
            text = source.read_text()
        if not text.strip():
            continue
        if path.endswith((".pkr.hcl", ".pkrvars.hcl")):
            text = hcl_fmt.fmt(text)
        if options.format == "json" and path.endswith(".pkr.hcl"):
            text = hcl.to_json(text)
            path = path[: -len(".hcl")] + ".json"
        rendered.files.append(RenderedFile(path, text, secret=any(s in text for s in secrets)))
    vars_path = f"{options.name}.auto.pkrvars.{options.format}"
    if (only is None or vars_path in only) and rendered.get(vars_path) is None:
        header = (
            f"Values for {options.name} (blueprint {bp.name}), written by `packwrap new`.\n"
            "Edit freely; `packwrap fetch-iso` rewrites iso_url and iso_checksum.\n"
            "Holds the root password hash: keep this file private (mode 0600)."
        )
        text = pkrvars(emitted_variables(bp, options), values, options.format, header)
        rendered.files.append(RenderedFile(vars_path, text, secret=True))
    return rendered


def pkrvars(variables: list[Variable], values: Mapping[str, Any], fmt: str, header: str) -> str:
    """The *.auto.pkrvars file: every declared variable with its chosen value."""
    if fmt == "json":
        import json

        return json.dumps({v.name: values.get(v.name) for v in variables}, indent=2) + "\n"
    lines = [f"# {line}".rstrip() for line in header.strip().splitlines()]
    lines.append("")
    lines += [f"{v.name} = {hcl_emit.literal(values.get(v.name))}" for v in variables]
    return hcl_fmt.fmt("\n".join(lines) + "\n")
