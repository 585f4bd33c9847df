"""load(): files -> variables (with Packer's precedence) -> locals -> builds."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packwrap.config.schema import SourceBody, ValueOrigin
from packwrap.errors import PackwrapError, UsageError
from packwrap.masking import mask
from packwrap.template.evaluate import (
    EvalError,
    Forbidden,
    FuncError,
    LazyMap,
    Scope,
    evaluate,
    to_string,
)
from packwrap.template.expr import ExprSyntaxError, parse_expression
from packwrap.template.functions import FUNCTIONS, IN_DEFAULT
from packwrap.template.model import BlockSpec, BuildSpec, SourceSpec, Template
from packwrap.template.syntax import Attr, Block, Body
from packwrap.template.types import TypeSyntaxError, convert, describe, is_primitive, parse_type
from packwrap.template.varref import variable_ref

# ("file", path) or ("var", "name=value"), in command-line order.
VarSetting = tuple[str, str]

TEMPLATE_SUFFIXES = (".pkr.hcl", ".pkr.json")
AUTO_VAR_SUFFIXES = (".auto.pkrvars.hcl", ".auto.pkrvars.json")
_TOP_BLOCKS = {"variable", "variables", "locals", "local", "source", "build", "packer", "data"}


def _short(text: str) -> str:
    one = " ".join(text.split())
    return one if len(one) <= 60 else one[:57] + "..."


def template_files(path: Path) -> tuple[list[Path], list[Path], str]:
    """(template files, auto var files, format) for a file or directory."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.endswith(TEMPLATE_SUFFIXES))
        autos = sorted(p for p in path.iterdir() if p.name.endswith(AUTO_VAR_SUFFIXES))
        if not files:
            raise PackwrapError(
                "no *.pkr.hcl or *.pkr.json template in this directory", file=str(path)
            )
        fmt = "hcl" if any(p.name.endswith(".pkr.hcl") for p in files) else "json"
        return files, autos, fmt
    if not path.exists():
        raise PackwrapError("no such file or directory", file=str(path))
    name = path.name
    if name.endswith(".pkr.hcl"):
        return [path], [], "hcl"
    if name.endswith(".pkr.json"):
        return [path], [], "json"
    if name.endswith(".json"):
        return [path], [], "legacy"
    raise PackwrapError(
        "not a template: expected a *.pkr.hcl, *.pkr.json or legacy *.json file, or a directory",
        file=str(path),
    )


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PackwrapError(f"cannot read: {exc.strerror}", file=str(path)) from None
    except UnicodeDecodeError:
        raise PackwrapError("not UTF-8 text", file=str(path)) from None


def parse_file(path: Path, fmt: str) -> Body:
    text = read_text(path)
    name = str(path)
    if fmt == "legacy":
        from packwrap.template.legacy import parse_legacy

        return parse_legacy(text, name)
    if path.name.endswith(".json"):
        from packwrap.template.json_reader import parse_json

        return parse_json(text, name, varfile=".pkrvars." in path.name)
    from packwrap.template.hcl_reader import parse_hcl

    return parse_hcl(text, name)


@dataclass
class _Variable:
    name: str
    block: Block
    type: Any  # parsed type constraint
    has_default: bool
    sensitive: bool
    value: Any = None
    origin: str = "default"  # where the current value came from
    origin_file: str | None = None  # ... as a place: the var-file or the default's line
    origin_line: int | None = None


class _Loader:
    def __init__(
        self,
        path: Path,
        settings: list[VarSetting],
        env: Mapping[str, str],
        require_builds: bool = True,
    ):
        self.path = path
        self.require_builds = require_builds
        self.settings = settings
        self.env = env
        self.cwd = Path.cwd()
        self.dir = (path if path.is_dir() else path.parent).resolve()
        self.warnings: list[str] = []
        self.scope_state: dict[str, Any] = {}
        self.legacy = False
        self.variables: dict[str, _Variable] = {}

    # -- helpers -------------------------------------------------------------
    def scope(self, roots: Mapping[str, Any]) -> Scope:
        return Scope(roots, FUNCTIONS, self.cwd, self.dir, self.env, self.scope_state)

    def eval_attr(self, attr: Attr, scope: Scope) -> Any:
        try:
            return evaluate(attr.expr, scope)
        except EvalError as exc:
            raise PackwrapError(
                f"{attr.name} = {_short(attr.text)}: {exc.message}",
                file=attr.file,
                line=attr.line_at(exc.pos),
            ) from None

    # -- main ----------------------------------------------------------------
    def load(self) -> Template:
        files, autos, fmt = template_files(self.path)
        root = Body(file=str(self.path), line=1)
        for f in files:
            body = parse_file(f, fmt)
            for name, attr in body.attrs.items():
                raise PackwrapError(
                    f"unexpected top-level attribute {name!r} (expected blocks such as "
                    "variable, locals, source, build)",
                    file=attr.file,
                    line=attr.line,
                )
            root.blocks.extend(body.blocks)
        for block in root.blocks:
            if block.type not in _TOP_BLOCKS:
                raise PackwrapError(
                    f"unsupported block type {block.type!r}", file=block.file, line=block.line
                )
            if block.type == "data":
                raise PackwrapError(
                    "data sources are not supported by packwrap", file=block.file, line=block.line
                )

        self.legacy = fmt == "legacy"
        variables = self.declare(root)
        self.variables = variables
        self.assign(variables, autos)
        values = self.finish_variables(variables)
        path_obj = {"root": str(self.dir), "cwd": str(self.cwd)}
        locals_map, sensitive_locals = self.locals(root, values, path_obj)
        base_roots = {"var": values, "local": locals_map, "path": path_obj}

        template = Template(
            path=self.path,
            dir=self.dir,
            format=fmt,
            variables=values,
            files=files,
            var_files=list(autos) + [Path(v) for k, v in self.settings if k == "file"],
        )
        for v in variables.values():
            if v.sensitive:
                template.sensitive.update(_secrets(v.value))
        template.builds = self.builds(root, base_roots, legacy=fmt == "legacy")
        # Locals are lazy: make sure every one evaluates (errors surface now).
        template.locals = {name: locals_map[name] for name in locals_map}
        for name in sensitive_locals:
            template.sensitive.update(_secrets(locals_map[name]))
        for name in sorted(self.scope_state.get("env_outside_default", ())):
            self.warnings.append(
                f'env("{name}") is used outside a variable default: packwrap allows that, '
                "but Packer does not (move it into a variable default)"
            )
        template.warnings = self.warnings
        return template

    # -- variables -----------------------------------------------------------
    def declare(self, root: Body) -> dict[str, _Variable]:
        variables: dict[str, _Variable] = {}
        empty = self.scope({})
        forbid = Forbidden("variables may not be used in a variable default")
        defaults_scope = self.scope({"var": forbid, "local": forbid, IN_DEFAULT: True})

        def add(name: str, block: Block) -> None:
            if name in variables:
                first = variables[name].block
                raise PackwrapError(
                    f"variable {name!r} is declared twice (first at {first.file}:{first.line})",
                    file=block.file,
                    line=block.line,
                )
            attrs = block.body.attrs
            for key, attr in attrs.items():
                if key not in ("type", "default", "description", "sensitive", "nullable"):
                    raise PackwrapError(
                        f"variable {name!r}: unknown argument {key!r}",
                        file=attr.file,
                        line=attr.line,
                    )
            vtype: Any = "any"
            if "type" in attrs:
                try:
                    vtype = parse_type(attrs["type"].expr)
                except TypeSyntaxError as exc:
                    a = attrs["type"]
                    raise PackwrapError(
                        f"variable {name!r}: {exc}", file=a.file, line=a.line
                    ) from None
            var = _Variable(name, block, vtype, "default" in attrs, False)
            if "sensitive" in attrs:
                var.sensitive = bool(self.eval_attr(attrs["sensitive"], empty))
            if "default" in attrs:  # a problem with the default value points here
                var.origin_file, var.origin_line = attrs["default"].file, attrs["default"].line
            if "default" in attrs and not self.legacy:
                a = attrs["default"]
                default = self.eval_attr(a, defaults_scope)
                var.value = self.convert(var, default, a.file, a.line, "default")
            variables[name] = var

        for block in root.blocks:
            if block.type == "variable":
                if len(block.labels) != 1:
                    raise PackwrapError(
                        'a variable block needs one label: variable "NAME" { ... }',
                        file=block.file,
                        line=block.line,
                    )
                add(block.labels[0], block)
            elif block.type == "variables":
                for name, attr in block.body.attrs.items():
                    fake = Body(attr.file, attr.line, {"default": attr})
                    add(name, Block("variable", [name], fake, attr.file, attr.line))
        return variables

    def convert(
        self, var: _Variable, value: Any, file: str | None, line: int | None, origin: str
    ) -> Any:
        try:
            return convert(value, var.type)
        except FuncError as exc:
            detail = str(exc)
            if var.sensitive:  # never echo a secret, even a malformed one
                detail = mask(detail, _secrets(value))
            raise PackwrapError(
                f"variable {var.name!r} ({origin}): {detail} (type {describe(var.type)})",
                file=file,
                line=line,
            ) from None

    def assign(self, variables: dict[str, _Variable], autos: list[Path]) -> None:
        # Lowest first: PKR_VAR_* < *.auto.pkrvars.* < -var-file/-var in order.
        for key, raw in sorted(self.env.items()):
            if key.startswith("PKR_VAR_") and key[8:] in variables:
                var = variables[key[8:]]
                value = self.literal(var, raw, f"environment variable {key}", None, None)
                var.value = self.convert(var, value, None, None, f"from {key}")
                var.origin, var.origin_file, var.origin_line = key, None, None
        for path in autos:
            self.assign_file(variables, path)
        for kind, item in self.settings:
            if kind == "file":
                self.assign_file(variables, Path(item))
            elif kind == "var":
                self.assign_arg(variables, item)
            else:
                raise UsageError(f"unknown variable setting kind {kind!r}")

    def literal(
        self, var: _Variable, raw: str, what: str, file: str | None, line: int | None
    ) -> Any:
        """-var / env values are literal strings unless the variable's type is complex."""
        if is_primitive(var.type):
            return raw
        try:
            node = parse_expression(raw)
            return evaluate(node, self.scope({}))
        except (ExprSyntaxError, EvalError) as exc:
            raise PackwrapError(
                f"{what}: cannot read {raw!r} as {describe(var.type)}: {exc.message}",
                file=file,
                line=line,
            ) from None

    def assign_arg(self, variables: dict[str, _Variable], arg: str) -> None:
        name, sep, raw = arg.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"-var {arg!r}: expected NAME=VALUE")
        if name not in variables:
            raise UsageError(f"-var {arg!r}: variable {name!r} is not declared in the template")
        var = variables[name]
        value = self.literal(var, raw, f"-var {name}", None, None)
        var.value = self.convert(var, value, None, None, f"-var {name}")
        var.origin, var.origin_file, var.origin_line = "-var", None, None

    def assign_file(self, variables: dict[str, _Variable], path: Path) -> None:
        if not path.is_file():
            raise UsageError("variable file not found", file=str(path))
        if not path.name.endswith((".hcl", ".json")):
            raise UsageError(
                "variable files must be *.pkrvars.hcl or *.pkrvars.json", file=str(path)
            )
        if path.name.endswith(".json"):
            from packwrap.template.json_reader import parse_json

            body = parse_json(read_text(path), str(path), varfile=True)
        else:
            from packwrap.template.hcl_reader import parse_hcl

            body = parse_hcl(read_text(path), str(path))
        for block in body.blocks:
            raise PackwrapError(
                f"blocks are not allowed in a variable file ({block.type!r})",
                file=block.file,
                line=block.line,
            )
        scope = self.scope({})
        for name, attr in body.attrs.items():
            if name not in variables:
                self.warnings.append(
                    f"{attr.file}:{attr.line}: undeclared variable {name!r} is ignored"
                )
                continue
            var = variables[name]
            value = self.eval_attr(attr, scope)
            var.value = self.convert(var, value, attr.file, attr.line, f"from {path.name}")
            var.origin = f"{attr.file}:{attr.line}"
            var.origin_file, var.origin_line = attr.file, attr.line

    def finish_variables(self, variables: dict[str, _Variable]) -> dict[str, Any]:
        if self.legacy:
            self.legacy_defaults(variables)
        values: dict[str, Any] = {}
        for var in variables.values():
            if var.value is None and not var.has_default and var.origin == "default":
                b = var.block
                raise PackwrapError(
                    f"variable {var.name!r} has no default and is not set "
                    f"(use -var {var.name}=..., a *.pkrvars.hcl file or PKR_VAR_{var.name})",
                    file=b.file,
                    line=b.line,
                )
            values[var.name] = var.value
        scope = self.scope({"var": values})
        for var in variables.values():
            for check in var.block.body.blocks_of("validation"):
                attrs = check.body.attrs
                if "condition" not in attrs or "error_message" not in attrs:
                    raise PackwrapError(
                        "a validation block needs condition and error_message",
                        file=check.file,
                        line=check.line,
                    )
                ok = self.eval_attr(attrs["condition"], scope)
                if ok is not True and ok != "true":
                    message = to_string(self.eval_attr(attrs["error_message"], scope))
                    raise PackwrapError(
                        f"invalid value for variable {var.name!r} ({var.origin}): {message}",
                        file=check.file,
                        line=attrs["condition"].line,
                    )
        return values

    def legacy_defaults(self, variables: dict[str, _Variable]) -> None:
        """Legacy defaults may use {{user `x`}}: evaluate them once overrides are known."""

        def thunk(var: _Variable) -> Callable[[], Any]:
            def value() -> Any:
                if var.origin != "default" or "default" not in var.block.body.attrs:
                    return var.value
                return self.eval_attr(var.block.body.attrs["default"], scope)

            return value

        lazy = LazyMap("var", {name: thunk(v) for name, v in variables.items()})
        scope = self.scope({"var": lazy})
        for name, var in variables.items():
            var.value = lazy[name]

    # -- locals ----------------------------------------------------------------
    def locals(self, root: Body, values: dict[str, Any], path_obj: dict) -> tuple[LazyMap, set]:
        attrs: dict[str, Attr] = {}
        sensitive: set[str] = set()

        def add(name: str, attr: Attr) -> None:
            if name in attrs:
                first = attrs[name]
                raise PackwrapError(
                    f"local {name!r} is defined twice (first at {first.file}:{first.line})",
                    file=attr.file,
                    line=attr.line,
                )
            attrs[name] = attr

        for block in root.blocks:
            if block.type == "locals":
                for name, attr in block.body.attrs.items():
                    add(name, attr)
            elif block.type == "local":
                expr = block.body.attrs.get("expression")
                if expr is None or len(block.labels) != 1:
                    raise PackwrapError(
                        'expected local "NAME" { expression = ... }',
                        file=block.file,
                        line=block.line,
                    )
                add(
                    block.labels[0],
                    Attr(block.labels[0], expr.expr, expr.file, expr.line, expr.expr_line),
                )
                if "sensitive" in block.body.attrs and self.eval_attr(
                    block.body.attrs["sensitive"], self.scope({})
                ):
                    sensitive.add(block.labels[0])
        lazy: LazyMap
        roots: dict[str, Any] = {"var": values, "path": path_obj}

        def thunk(attr: Attr) -> Callable[[], Any]:
            return lambda: self.eval_attr(attr, self.scope(roots))

        lazy = LazyMap("local", {name: thunk(a) for name, a in attrs.items()})
        roots["local"] = lazy
        return lazy, sensitive

    # -- builds ----------------------------------------------------------------
    def builds(self, root: Body, roots: dict[str, Any], *, legacy: bool) -> list[BuildSpec]:
        sources: dict[str, Block] = {}
        for block in root.blocks_of("source"):
            if len(block.labels) != 2:
                raise PackwrapError(
                    'a source block needs two labels: source "TYPE" "NAME" { ... }',
                    file=block.file,
                    line=block.line,
                )
            ref = f"source.{block.labels[0]}.{block.labels[1]}"
            if ref in sources:
                first = sources[ref]
                raise PackwrapError(
                    f"{ref} is defined twice (first at {first.file}:{first.line})",
                    file=block.file,
                    line=block.line,
                )
            sources[ref] = block
        builds: list[BuildSpec] = []
        seen: dict[str, Block] = {}
        for block in root.blocks_of("build"):
            for spec in self.build_block(block, sources, roots, legacy=legacy):
                if spec.name in seen:
                    raise PackwrapError(
                        f"two builds are named {spec.name!r}; give one build block a name",
                        file=block.file,
                        line=block.line,
                    )
                seen[spec.name] = block
                builds.append(spec)
        if not root.blocks_of("build") and self.require_builds:
            where = root.blocks[0] if root.blocks else None
            raise PackwrapError(
                "the template has no build block",
                file=where.file if where else str(self.path),
                line=None,
            )
        return builds

    def build_block(
        self, block: Block, sources: dict[str, Block], roots: dict[str, Any], *, legacy: bool
    ) -> list[BuildSpec]:
        scope = self.scope(roots)
        attrs = block.body.attrs
        for key, attr in attrs.items():
            if key not in ("name", "description", "sources"):
                raise PackwrapError(
                    f"build block: unknown argument {key!r}", file=attr.file, line=attr.line
                )
        build_name = to_string(self.eval_attr(attrs["name"], scope)) if "name" in attrs else None
        description = (
            self.eval_attr(attrs["description"], scope) if "description" in attrs else None
        )
        # (reference, override block or None, where) for each source of the build
        uses: list[tuple[str, Block | None, Attr | Block]] = []
        if "sources" in attrs:
            refs = self.eval_attr(attrs["sources"], scope)
            if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
                raise PackwrapError(
                    'sources must be a list of strings like "source.qemu.NAME"',
                    file=attrs["sources"].file,
                    line=attrs["sources"].line,
                )
            uses.extend((r, None, attrs["sources"]) for r in refs)
        for inner in block.body.blocks:
            if inner.type == "source":
                if len(inner.labels) != 1:
                    raise PackwrapError(
                        'expected source "source.TYPE.NAME" { ... } inside build',
                        file=inner.file,
                        line=inner.line,
                    )
                uses.append((inner.labels[0], inner, inner))
            elif inner.type not in (
                "provisioner",
                "post-processor",
                "post-processors",
                "error-cleanup-provisioner",
            ):
                raise PackwrapError(
                    f"build block: unsupported block {inner.type!r}",
                    file=inner.file,
                    line=inner.line,
                )
        if not uses:
            raise PackwrapError("build block lists no sources", file=block.file, line=block.line)
        specs = []
        for ref, override, where in uses:
            src = sources.get(ref if ref.startswith("source.") else f"source.{ref}")
            if src is None:
                known = ", ".join(sources) or "none"
                line = where.line
                raise PackwrapError(
                    f"unknown source {ref!r} (defined sources: {known})", file=where.file, line=line
                )
            specs.append(
                self.build_spec(block, build_name, description, src, override, roots, legacy=legacy)
            )
        return specs

    def build_spec(
        self,
        block: Block,
        build_name: str | None,
        description: Any,
        src: Block,
        override: Block | None,
        roots: dict[str, Any],
        *,
        legacy: bool,
    ) -> BuildSpec:
        stype, sname = src.labels
        body_attrs = dict(src.body.attrs)
        body_blocks = list(src.body.blocks)
        if override is not None:
            over = dict(override.body.attrs)
            if "name" in over:
                sname = to_string(self.eval_attr(over.pop("name"), self.scope(roots)))
            body_attrs.update(over)
            body_blocks.extend(override.body.blocks)
        source_roots = dict(roots, source={"type": stype, "name": sname})
        scope = self.scope(source_roots)
        values, lines = self.eval_body(Body(src.file, src.line, body_attrs, body_blocks), scope)
        origins = self.origins(body_attrs.values())
        source = SourceSpec(stype, sname, SourceBody(values, src.file, src.line, lines, origins))
        if legacy:
            full = sname
        else:
            full = f"{stype}.{sname}"
            if build_name:
                full = f"{build_name}.{full}"
        spec = BuildSpec(full, source, build_name=build_name, description=description)
        for inner in block.body.blocks:
            if inner.type == "provisioner":
                p = self.block_spec(inner, scope, spec)
                if p is not None:
                    spec.provisioners.append(p)
            elif inner.type == "post-processor":
                p = self.block_spec(inner, scope, spec)
                if p is not None:
                    spec.post_processors.append([p])
            elif inner.type == "post-processors":
                chain = []
                for pp in inner.body.blocks:
                    if pp.type != "post-processor":
                        raise PackwrapError(
                            f"post-processors: unexpected block {pp.type!r}",
                            file=pp.file,
                            line=pp.line,
                        )
                    p = self.block_spec(pp, scope, spec)
                    if p is not None:
                        chain.append(p)
                if chain:
                    spec.post_processors.append(chain)
        return spec

    def eval_body(self, body: Body, scope: Scope) -> tuple[dict[str, Any], dict[str, int]]:
        values: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for name, attr in body.attrs.items():
            values[name] = self.eval_attr(attr, scope)
            lines[name] = attr.line
        for inner in body.blocks:
            inner_values, _ = self.eval_body(inner.body, scope)
            if inner.labels:
                inner_values = {"__labels__": inner.labels, **inner_values}
            values.setdefault(inner.type, []).append(inner_values)
            lines.setdefault(inner.type, inner.line)
        return values, lines

    def origins(self, attrs: Iterable[Attr]) -> dict[str, ValueOrigin]:
        """option -> the variable it is (or the one variable it uses) and where that was set."""
        found: dict[str, ValueOrigin] = {}
        for attr in attrs:
            ref = variable_ref(attr.expr)
            var = self.variables.get(ref[0]) if ref else None
            if ref is None or var is None:
                continue
            found[attr.name] = ValueOrigin(
                var.name, var.origin, var.origin_file, var.origin_line, bare=ref[1]
            )
        return found

    def block_spec(self, block: Block, scope: Scope, build: BuildSpec) -> BlockSpec | None:
        if len(block.labels) != 1:
            raise PackwrapError(
                f'expected {block.type} "TYPE" {{ ... }}', file=block.file, line=block.line
            )
        values, lines = self.eval_body(block.body, scope)
        name = values.pop("name", None)
        only = _str_list(values.pop("only", []), block, "only")
        except_ = _str_list(values.pop("except", []), block, "except")
        if only and not _names_match(build, only):
            return None
        if except_ and _names_match(build, except_):
            return None
        # override = { "<source>" = { ... } }: per-build values (legacy: builder name;
        # HCL2: "type.name"; either spelling is accepted).
        override = values.pop("override", None) if block.type == "provisioner" else None
        if isinstance(override, dict):
            for key, extra in override.items():
                if isinstance(extra, dict) and _names_match(build, [key]):
                    values.update(extra)
        for key in ("name", "only", "except", "override"):
            lines.pop(key, None)
        origins = self.origins(a for k, a in block.body.attrs.items() if k in lines)
        body = SourceBody(values, block.file, block.line, lines, origins)
        return BlockSpec(block.labels[0], None if name is None else str(name), body, only, except_)


def _str_list(value: Any, block: Block, what: str) -> list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise PackwrapError(f"{what} must be a list of source names", file=block.file, line=block.line)


def _names_match(build: BuildSpec, names: list[str]) -> bool:
    mine = {build.source.name, build.short_name, f"source.{build.short_name}", build.name}
    return any(n in mine for n in names)


def _secrets(value: Any) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, list):
        return set().union(*(_secrets(v) for v in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(_secrets(v) for v in value.values())) if value else set()
    s = to_string(value)
    return {s} if s else set()


def load(
    path: Path,
    *,
    settings: list[VarSetting],
    env: Mapping[str, str],
    require_builds: bool = True,
) -> Template:
    try:
        return _Loader(path, settings, env, require_builds).load()
    except RecursionError:
        raise PackwrapError("expression nesting too deep", file=str(path)) from None


__all__ = ["VarSetting", "load", "template_files"]
