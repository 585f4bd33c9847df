"""`packwrap console [TEMPLATE] [-var k=v]... [-var-file f]...`, like `packer console`.

Reads expressions from standard input, one a line, evaluates each in the
template's scope (var, local, path) and prints the result: strings bare, lists,
maps and objects as JSON. A bad line is one `<stdin>:N: message` on stderr and the
exit code is 1; a template with errors is reported before any line is read.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from packwrap.template.evaluate import Scope

_CONTEXT = {
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    "help_option_names": ["--help"],
}


def register(app: typer.Typer) -> None:
    @app.command("console", context_settings=_CONTEXT)
    def console_cmd(ctx: typer.Context) -> None:
        """Evaluate expressions read from stdin, one a line, in TEMPLATE's scope
        [-var k=v] [-var-file f]. Strings print bare, collections as JSON."""
        import sys

        from packwrap.template.cliargs import parse_packer_flags

        flags = parse_packer_flags(list(ctx.args), command="console")
        scope = console_scope(flags.path, flags.settings)
        failures = run_console(scope, sys.stdin, sys.stdout, sys.stderr)
        if failures:
            raise typer.Exit(1)


def console_scope(path: str | None, settings: list[tuple[str, str]]) -> Scope:
    """The scope a template's expressions see; an empty one without a template."""
    import os
    from pathlib import Path

    from packwrap.template import load_template
    from packwrap.template.evaluate import Scope
    from packwrap.template.functions import FUNCTIONS

    cwd = Path.cwd()
    if path is None:
        return Scope(
            {"var": {}, "local": {}, "path": {"root": str(cwd), "cwd": str(cwd)}},
            FUNCTIONS,
            cwd,
            cwd,
            dict(os.environ),
        )
    template = load_template(path, settings=settings, require_builds=False)
    roots = {
        "var": template.variables,
        "local": template.locals,
        "path": {"root": str(template.dir), "cwd": str(cwd)},
    }
    return Scope(roots, FUNCTIONS, cwd, template.dir, dict(os.environ))


def run_console(scope: Scope, lines: IO[str], out: IO[str], err: IO[str]) -> int:
    """Evaluate each line; returns how many failed."""
    from packwrap.template.evaluate import EvalError, evaluate
    from packwrap.template.expr import ExprSyntaxError, parse_expression

    failures = 0
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            value = evaluate(parse_expression(text), scope)
        except (ExprSyntaxError, EvalError) as exc:
            failures += 1
            err.write(f"<stdin>:{number}: {exc.message}\n")
            continue
        out.write(render(value) + "\n")
        out.flush()
    return failures


def render(value: Any) -> str:
    """Packer console's printing: strings without quotes, collections as JSON."""
    import json
    from collections.abc import Mapping

    from packwrap.template.evaluate import to_string

    if value is None:
        return "null"
    if isinstance(value, list | Mapping):
        return json.dumps(_plain(value), indent=2)
    return to_string(value)


def _plain(value: Any) -> Any:
    from collections.abc import Mapping

    if isinstance(value, Mapping):
        return {k: _plain(value[k]) for k in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
