"""`packwrap new`: pick the blueprint instance, settle the values, render, write.

Everything that can be wrong with the request (blueprint, release, arch, builder, --var,
target directory) is checked before the root password is asked for and before any file
is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packwrap.blueprint import installer, registry
from packwrap.blueprint.model import Blueprint
from packwrap.blueprint.project import check_target, project_meta, write_project
from packwrap.blueprint.record import META_FILE, read_record
from packwrap.blueprint.registry import release_short
from packwrap.blueprint.render import BUILDERS, Options, Rendered, render_project
from packwrap.blueprint.values import (
    LOCKED_PASSWORD,
    check_password_hash,
    parse_var_args,
    resolve_values,
)
from packwrap.errors import PackwrapError, UsageError

PASSWORD_VAR = "root_password_hash"


@dataclass
class Plan:
    """A checked request: what will be rendered, before the password is known."""

    blueprint: Blueprint
    options: Options
    overrides: dict[str, Any]
    target: Path
    force: bool


def full_variables(bp: Blueprint) -> Blueprint:
    """Add the installer's variables (packwrap.autoinstall) when the blueprint asks for them;
    the blueprint's own table for such a name overrides what it sets (e.g. a default)."""
    if bp.parameters.get("installer_variables"):
        bp.add_variables(installer.installer_variables())
    return bp


def _builders(bp: Blueprint, arch: str, builder: str) -> list[str]:
    allowed = bp.data.get("arches", {}).get(arch, {}).get("builders", list(BUILDERS))
    if builder == "all":
        chosen = [b for b in BUILDERS if b in allowed]
    elif builder in BUILDERS:
        if builder not in allowed:
            raise UsageError(f"--builder {builder}: not available for --arch {arch}")
        chosen = [builder]
    else:
        raise UsageError(f"--builder {builder!r}: expected openbsd-vmm, qemu or all")
    return chosen


def plan(
    blueprint_name: str,
    target: Path | None,
    *,
    arch: str | None = None,
    builder: str = "all",
    fmt: str = "hcl",
    var_args: Iterable[str] = (),
    pure_packer: bool = False,
    force: bool = False,
    env: Mapping[str, str] | None = None,
) -> Plan:
    inst = registry.resolve(blueprint_name, env)
    bp = full_variables(inst.blueprint)
    arches = [str(a) for a in bp.parameters.get("arches", ["amd64"])]
    arch = arch or str(bp.parameters.get("default_arch", arches[0]))
    if arch not in arches:
        raise UsageError(f"--arch {arch!r}: blueprint {bp.name} knows {', '.join(arches)}")
    if fmt not in ("hcl", "json"):
        raise UsageError(f"--format {fmt!r}: expected hcl or json")
    builders = _builders(bp, arch, builder)
    options = Options(
        name=inst.name,
        release=inst.release,
        arch=arch,
        builders=builders,
        format=fmt,
        pure_packer=pure_packer,
        # The qemu source the blueprint writes boots through UEFI on such an arch (arm64).
        efi="qemu" in builders and bool(bp.data.get("arches", {}).get(arch, {}).get("efi_boot")),
    )
    overrides = parse_var_args(var_args, bp.variables)
    for name, value in overrides.items():
        # file names given on the command line are relative to where `new` runs; the
        # project (and later builds) may run anywhere
        if bp.variables[name].path and value:
            overrides[name] = str(Path(str(value)).expanduser().absolute())
    _private_key_for_public(overrides)
    if PASSWORD_VAR in overrides:
        check_password_hash(str(overrides[PASSWORD_VAR]))
    target = Path(target) if target is not None else Path(blueprint_name)
    check_target(target, force)
    p = Plan(bp, options, overrides, target, force)
    # Render once with a stand-in password, so a bad combination of values (or a missing
    # ssh key file) is reported before anyone is asked for a password.
    trial = Plan(bp, options, {PASSWORD_VAR: LOCKED_PASSWORD, **overrides}, target, force)
    rendered, _ = render_plan(trial)
    check_rendered(trial, rendered)
    return p


def check_rendered(p: Plan, rendered: Rendered) -> None:
    """Load the rendered project from a scratch copy through the builders' schemas, as
    `validate` and `build` will, so a bad value (`--var disk_size=lots`) fails `new`
    before anything is written. One UsageError naming the --var when a --var is at fault."""
    import tempfile

    from packwrap.config.schema import ConfigError, Problem
    from packwrap.plugins import builder_for
    from packwrap.template import load_template

    with tempfile.TemporaryDirectory(prefix="packwrap-new-") as scratch:
        root = Path(scratch)
        for f in rendered.files:
            (root / f.path).parent.mkdir(parents=True, exist_ok=True)
            (root / f.path).write_text(f.content, encoding="utf-8")

        def shown(text: str) -> str:  # the scratch copy's paths as the project's
            return text.replace(str(root), str(p.target))

        try:
            template = load_template(root, settings=[], env={})
            problems: list[Problem] = []
            for build in template.builds:
                builder = builder_for(build.source.type)
                if builder is not None:
                    problems += builder.schema.prepare(build.source.body)[1]
        except ConfigError as exc:
            problems = exc.problems
        except PackwrapError as exc:
            raise UsageError(f"the rendered project does not load: {shown(str(exc))}") from None
        messages: list[str] = []
        # a problem naming the user's --var first: that is what they can fix
        for problem in sorted(problems, key=lambda q: q.variable not in p.overrides):
            if problem.variable in p.overrides:
                text = f"--var {problem.variable}: {problem.message}"
            else:
                text = shown(str(problem))
            if text not in messages:  # both builders may reject the same variable
                messages.append(text)
        if messages:
            extra = f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""
            raise UsageError(messages[0] + extra)


def _private_key_for_public(overrides: dict[str, Any]) -> None:
    """communicator = "ssh" with ssh_public_key_file=KEY.pub: provisioning logs in with the
    private half, so ssh_private_key_file defaults to KEY when that file exists."""
    public = str(overrides.get("ssh_public_key_file") or "")
    if (
        overrides.get("communicator") == "ssh"
        and public.endswith(".pub")
        and not overrides.get("ssh_private_key_file")
        and Path(public[: -len(".pub")]).is_file()
    ):
        overrides["ssh_private_key_file"] = public[: -len(".pub")]


def settle_password(
    p: Plan,
    *,
    password: str | None,
    no_password: bool,
    prompt: Callable[[], str] | None,
) -> None:
    """The root password becomes `root_password_hash` (bcrypt) or the 13-asterisk lock.

    Order: --root-password, --var root_password_hash, --no-root-password, then the prompt
    (terminals only); with none of them it is an error, never a silent default.
    """
    given = [password is not None, PASSWORD_VAR in p.overrides, no_password]
    if sum(given) > 1:
        raise UsageError(
            "give only one of --root-password, --var root_password_hash, --no-root-password"
        )
    if password is not None:
        if not password:
            raise UsageError("--root-password: empty password (use --no-root-password to lock it)")
        p.overrides[PASSWORD_VAR] = installer.hash_password(password)
    elif no_password:
        p.overrides[PASSWORD_VAR] = LOCKED_PASSWORD
    elif PASSWORD_VAR not in p.overrides:
        if prompt is None:
            raise UsageError(
                "no root password: pass --root-password PW, --var root_password_hash=HASH, "
                "or --no-root-password (locks it; log in with ssh_public_key_file)"
            )
        secret = prompt()
        if not secret:
            raise UsageError("empty root password (use --no-root-password to lock it)")
        p.overrides[PASSWORD_VAR] = installer.hash_password(secret)


def base_context(bp: Blueprint, options: Options) -> dict[str, Any]:
    return {
        "name": options.name,
        "blueprint": bp.name,
        "release": options.release or "",
        "release_short": release_short(options.release),
        "arch": options.arch,
        "arch_info": bp.data.get("arches", {}).get(options.arch, {}),
    }


def render_plan(p: Plan) -> tuple[Rendered, dict[str, Any]]:
    ctx = base_context(p.blueprint, p.options)
    defaults = resolve_values(p.blueprint.variables, ctx, {})
    values = resolve_values(p.blueprint.variables, ctx, p.overrides)
    rendered = render_project(p.blueprint, p.options, values, defaults=defaults)
    sensitive = {v.name for v in p.blueprint.variables.values() if v.sensitive}
    rendered.files.append(
        project_meta(
            blueprint=p.blueprint.name,
            instance=p.options.name,
            release=p.options.release,
            arch=p.options.arch,
            builders=p.options.builders,
            fmt=p.options.format,
            pure_packer=p.options.pure_packer,
            values=values,
            sensitive=sensitive,
            rendered=rendered,
            regenerate=[str(x) for x in p.blueprint.parameters.get("regenerate", [])],
        )
    )
    return rendered, values


def leftovers(p: Plan) -> list[str]:
    """Files an earlier `new` generated here that this one will not write (e.g. the
    .pkr.hcl after switching to --format json): reported, never deleted."""
    try:
        record = read_record(p.target) if p.target.is_dir() else None
    except PackwrapError:
        return []
    if record is None:
        return []
    rendered, _ = render_plan(p)
    new_paths = {f.path for f in rendered.files}
    return sorted(
        path for path in record.files if path not in new_paths and (p.target / path).exists()
    )


def execute(p: Plan) -> list[Path]:
    rendered, _ = render_plan(p)
    assert rendered.get(META_FILE) is not None
    return write_project(p.target, rendered, force=p.force)
