"""`packwrap validate [PATH] [-var k=v]... [-var-file f]... [-only ..] [-except ..] [-syntax-only]`.

Loads and evaluates the template, then runs each selected build's source body
through its builder's schema (Packer's Prepare) and prints every problem as
`file:line: message`. Exit 0 when clean, 1 with all problems listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from packwrap.template import Template
    from packwrap.template.cliargs import PackerFlags

_CONTEXT = {
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    "help_option_names": ["--help"],
}


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)


def register(app: typer.Typer) -> None:
    @app.command("validate", context_settings=_CONTEXT)
    def validate_cmd(ctx: typer.Context) -> None:
        """Check a template: PATH (default .) [-var k=v] [-var-file f] [-only ..] [-except ..]
        [-syntax-only]. Prints every problem as file:line: message."""
        from packwrap.template.cliargs import parse_packer_flags

        flags = parse_packer_flags(list(ctx.args), command="validate")
        report = validate(flags)
        for w in report.warnings:
            typer.echo(f"Warning: {w}", err=True)
        for n in report.notes:
            typer.echo(n)
        for p in report.problems:
            typer.echo(p, err=True)
        if report.problems:
            count = len(report.problems)
            typer.echo(f"Error: {count} problem{'s' * (count != 1)} found.", err=True)
            raise typer.Exit(1)
        typer.echo("The configuration is valid.")


def validate(flags: PackerFlags) -> Report:
    """Everything `packwrap validate` checks; PackwrapError for a template that won't load."""
    from pathlib import Path

    from packwrap.template import load_template, select_builds

    path = Path(flags.path or ".")
    report = Report()
    if flags.syntax_only:
        _syntax_only(path, flags)
        return report
    template = load_template(path, settings=flags.settings)
    if flags.warn_undeclared:
        report.warnings.extend(template.warnings)
    builds = select_builds(template, flags.only, flags.except_)
    handed_off = []
    for build in builds:
        handed_off += _check_build(build, template, report, flags)
    if handed_off:
        _packer_syntax(path, report)
    _lint_response_file(template, builds, report)
    report.problems = [template.mask(p) for p in report.problems]
    return report


def _check_build(build: Any, template: Template, report: Report, flags: Any) -> list[str]:
    from packwrap.plugins import builder_for

    stype = build.source.type
    try:
        builder = builder_for(stype)
    except ImportError as exc:
        body = build.source.body
        where = f"{body.file}:{body.line}: " if body.file else ""
        report.problem(f"{where}the {stype!r} builder plugin failed to load: {exc}")
        return []
    if builder is None:
        report.notes.append(
            f"{build.name}: no packwrap builder for source type {stype!r}; "
            "`packwrap build` hands it to a real packer binary"
        )
        return [build.name]
    blocker = _handover_blocker(build, report, flags)
    if blocker is None:
        return [build.name]
    _config, problems, warnings = builder.schema.prepare(build.source.body)
    for p in problems:
        report.problem(str(p))
    report.warnings.extend(f"{build.name}: {w}" for w in warnings)
    # What `packwrap build` prepares before starting: provisioners and post-processors.
    # One block at a time, so one unsupported type does not hide the other problems.
    from packwrap.postprocess import UnsupportedPostProcessor, post_processor_for, prepare_chains
    from packwrap.provision.step import prepare_provisioners

    for block in build.provisioners:
        _prepare(report, prepare_provisioners, [block])
    for chain in build.post_processors:
        for block in chain:
            if post_processor_for(block.type) is not None:
                _prepare(report, prepare_chains, [[block]])
            else:
                report.problem(str(UnsupportedPostProcessor(block, blocker)))
    return []


def _handover_blocker(build: Any, report: Report, flags: PackerFlags) -> str | None:
    """None when a post-processor packwrap does not embed sends the whole build to packer;
    else why it cannot go there ("" when every post-processor is embedded)."""
    import os

    from packwrap.postprocess.handover import handover_blocker, unembedded

    missing = unembedded(build.post_processors)
    if not missing:
        return ""
    reason = handover_blocker(build, flags, os.environ)
    if reason is None:
        types = ", ".join(sorted({repr(b.type) for b in missing}))
        report.notes.append(
            f"{build.name}: post-processor {types} is not embedded in packwrap; "
            "`packwrap build` hands the whole build to a real packer binary"
        )
    return reason


def _prepare(report: Report, prepare: Any, blocks: list) -> None:
    """Run a prepare function on some blocks, collecting its problems into the report."""
    from packwrap.config.schema import ConfigError
    from packwrap.errors import PackwrapError

    if not blocks:
        return
    try:
        prepare(blocks)
    except ConfigError as exc:
        for p in exc.problems:
            report.problem(str(p))
    except PackwrapError as exc:
        report.problem(str(exc))


def _syntax_only(path: Any, flags: PackerFlags) -> None:
    """Parse every file (templates and var files) without evaluating anything."""
    from pathlib import Path

    from packwrap.template.loader import parse_file, template_files

    files, autos, fmt = template_files(path)
    for f in files:
        parse_file(f, fmt)
    for f in [*autos, *(Path(v) for v in flags.var_files)]:
        parse_file(f, "hcl")


def _packer_syntax(path: Any, report: Report) -> None:
    """Builds handed to packer: let packer check the syntax too, when it is installed."""
    import shutil
    import subprocess

    packer = shutil.which("packer")
    if packer is None:
        report.notes.append("packer is not installed: those builds were checked for syntax only")
        return
    try:
        done = subprocess.run(
            [packer, "validate", "-syntax-only", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        report.warnings.append(f"could not run packer validate: {exc}")
        return
    if done.returncode != 0:
        detail = " ".join((done.stderr or done.stdout).split())
        report.problem(f"{path}: packer validate -syntax-only failed: {detail}")


def _lint_response_file(template: Template, builds: list[Any], report: Report) -> None:
    """Lint the response file the build would serve, rendered in memory when it is out of
    date with the variables (validate writes nothing)."""
    from packwrap.blueprint import lint_context
    from packwrap.plugins import boots_efi

    efi = boots_efi(builds)  # the selected builds' firmware decides disk_partitioning
    generated = _generated(template, report, efi=efi)
    target = lint_context.lint_target(
        template.dir, variables=template.variables, generated=generated, efi=efi
    )
    if target is None:
        return
    for f in lint_context.lint(target):
        line = getattr(f, "line", 0)
        message = getattr(f, "message", str(f))
        text = f"{target.path}:{line}: {message}" if line else f"{target.path}: {message}"
        if getattr(f, "severity", "error") == "error":
            report.problem(text)
        else:
            report.warnings.append(text)


def _generated(template: Template, report: Report, *, efi: bool) -> Any:
    """The project's generated files rendered for the variables (None: not a blueprint
    project, or its files cannot be rendered: then a warning or a problem says why)."""
    from packwrap.blueprint.regenerate import BlueprintUnavailable, plan
    from packwrap.errors import PackwrapError

    try:
        generated = plan(template.dir, template.variables, efi=efi)
    except BlueprintUnavailable as exc:
        report.warnings.append(str(exc))
        return None
    except PackwrapError as exc:
        report.problem(str(exc))
        return None
    if generated is not None:
        report.notes.extend(generated.notes())
        report.warnings.extend(generated.warnings())
    return generated
