"""Legacy JSON templates (`"builders": [...]`, `{{user `x`}}`) as a syntax.Body.

The legacy file is mapped onto the HCL2 block structure (variable, source,
build) so evaluation and build assembly are shared. Strings become "legacy"
nodes: their `{{user `x`}}`, `{{env `X`}}`, `{{timestamp}}`, `{{isotime}}`,
`{{uuid}}`, `{{pwd}}` and `{{template_dir}}` calls are rendered at load time;
every other `{{ ... }}` (Go-template data such as `{{ .HTTPIP }}`, or
`{{build_name}}`) is left for the builder to render.
"""

from __future__ import annotations

import datetime as _dt
import re
import uuid
from typing import Any

from packwrap.errors import PackwrapError
from packwrap.template.evaluate import EvalError, Scope
from packwrap.template.expr import Node
from packwrap.template.json_reader import load_json
from packwrap.template.jsonpos import PosDict
from packwrap.template.syntax import Attr, Block, Body

_TOP_KEYS = {
    "variables",
    "builders",
    "provisioners",
    "post-processors",
    "sensitive-variables",
    "description",
    "min_packer_version",
}
_CALL = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.S)
_ARG = r"\s*(?:`([^`]*)`|\"([^\"]*)\")\s*"


def is_legacy(data: Any) -> bool:
    return isinstance(data, dict) and "builders" in data


def legacy_node(text: str) -> Node:
    return Node("legacy", 0, (text,), text=text)


def _node(value: Any) -> Node:
    if isinstance(value, str):
        return legacy_node(value)
    if isinstance(value, list):
        return Node("tuple", 0, ([_node(v) for v in value],), text=repr(value))
    if isinstance(value, dict):
        pairs = [(Node("lit", 0, (k,)), _node(v)) for k, v in value.items()]
        return Node("object", 0, (pairs,), text=repr(value))
    return Node("lit", 0, (value,), text=repr(value))


def _attrs(obj: dict, file: str, skip: tuple[str, ...] = ()) -> Body:
    body = Body(file=file, line=getattr(obj, "line", 1))
    lines = getattr(obj, "key_lines", {})
    for key, value in obj.items():
        if key in skip:
            continue
        body.attrs[key] = Attr(key, _node(value), file, lines.get(key, body.line))
    return body


def parse_legacy(text: str, file: str) -> Body:
    data = load_json(text, file)
    return legacy_body(data, file)


def legacy_body(data: Any, file: str) -> Body:
    if not is_legacy(data):
        raise PackwrapError(
            'not a Packer template: a legacy JSON template needs "builders"; '
            "HCL2 JSON templates must be named *.pkr.json",
            file=file,
            line=1,
        )
    lines = data.key_lines
    for key in data:
        if key not in _TOP_KEYS and not key.startswith("_"):
            raise PackwrapError(f"unknown top-level key {key!r}", file=file, line=lines[key])
    root = Body(file=file, line=1)
    sensitive_list = _list_of(data, "sensitive-variables", file)
    if not all(isinstance(v, str) for v in sensitive_list):
        raise PackwrapError(
            '"sensitive-variables" must be a list of variable names',
            file=file,
            line=lines["sensitive-variables"],
        )
    sensitive = set(sensitive_list)
    variables = data.get("variables") or PosDict()
    if not isinstance(variables, PosDict):
        raise PackwrapError('"variables" must be an object', file=file, line=lines["variables"])
    for name, default in variables.items():
        line = variables.key_lines[name]
        if default is not None and not isinstance(default, str):
            raise PackwrapError(
                f"variable {name!r}: default must be a string", file=file, line=line
            )
        body = Body(file=file, line=line)
        if default is not None:  # a null default means the variable is required
            body.attrs["default"] = Attr("default", _node(default), file, line)
        if name in sensitive:
            body.attrs["sensitive"] = Attr("sensitive", Node("lit", 0, (True,)), file, line)
        root.blocks.append(Block("variable", [name], body, file, line))

    builders = data["builders"]
    if not isinstance(builders, list) or not builders:
        raise PackwrapError(
            '"builders" must be a non-empty list', file=file, line=lines["builders"]
        )
    build = Body(file=file, line=lines["builders"])
    sources = []
    seen: dict[str, int] = {}
    for b in builders:
        line = getattr(b, "line", build.line)
        if not isinstance(b, dict) or not isinstance(b.get("type"), str):
            raise PackwrapError('each builder needs a "type"', file=file, line=line)
        name = b.get("name", b["type"])
        if not isinstance(name, str) or not name:
            raise PackwrapError('a builder "name" must be a non-empty string', file=file, line=line)
        if name in seen:
            raise PackwrapError(
                f"builder name {name!r} is used twice (first at line {seen[name]}); "
                'give each builder a unique "name"',
                file=file,
                line=line,
            )
        seen[name] = line
        root.blocks.append(
            Block("source", [b["type"], name], _attrs(b, file, ("type", "name")), file, line)
        )
        sources.append(f"source.{b['type']}.{name}")
    build.attrs["sources"] = Attr(
        "sources", Node("tuple", 0, ([Node("lit", 0, (s,)) for s in sources],)), file, build.line
    )
    for p in _list_of(data, "provisioners", file):
        line = getattr(p, "line", 1)
        if not isinstance(p, dict) or not isinstance(p.get("type"), str):
            raise PackwrapError('each provisioner needs a "type"', file=file, line=line)
        block = Block("provisioner", [p["type"]], _attrs(p, file, ("type",)), file, line)
        build.blocks.append(block)
    for i, chain in enumerate(_list_of(data, "post-processors", file), 1):
        items = chain if isinstance(chain, list) else [chain]
        group = Body(file=file, line=getattr(chain, "line", 1))
        for j, pp in enumerate(items, 1):
            _only_except_name_builders(pp, seen, f"post-processor {i}.{j}", file)
            if isinstance(pp, str):
                pp_body, pp_type, line = Body(file, group.line), pp, group.line
            elif isinstance(pp, PosDict) and isinstance(pp.get("type"), str):
                pp_body, pp_type, line = _attrs(pp, file, ("type",)), pp["type"], pp.line
            else:
                raise PackwrapError(
                    'each post-processor needs a "type"', file=file, line=group.line
                )
            group.blocks.append(Block("post-processor", [pp_type], pp_body, file, line))
        build.blocks.append(Block("post-processors", [], group, file, group.line))
    root.blocks.append(Block("build", [], build, file, build.line))
    return root


def _only_except_name_builders(item: Any, builders: dict[str, int], what: str, file: str) -> None:
    """Packer's check: each name in `only`/`except` is a builder of the template."""
    if not isinstance(item, PosDict):
        return
    for key in ("only", "except"):
        names = item.get(key)
        for name in names if isinstance(names, list) else []:
            if isinstance(name, str) and name not in builders:
                raise PackwrapError(
                    f"{what}: {key!r} specified builder {name!r} not found",
                    file=file,
                    line=item.key_lines.get(key, item.line),
                )


def _list_of(data: Any, key: str, file: str) -> list[Any]:
    """data[key] as a list (absent or null: empty); anything else is an error."""
    value = data.get(key) or []
    if not isinstance(value, list):
        raise PackwrapError(f"{key!r} must be a list", file=file, line=data.key_lines[key])
    return value


def render(text: str, scope: Scope) -> str:
    """Render the load-time calls of a legacy template string."""

    def call(m: re.Match[str]) -> str:
        inner = m.group(2).strip()
        word = inner.split(None, 1)[0] if inner else ""
        rest = inner[len(word) :]
        if word in ("user", "env"):
            arg = re.fullmatch(_ARG, rest)
            if not arg:
                raise EvalError(f"{{{{{inner}}}}}: expected {word} `name`")
            name = arg.group(1) if arg.group(1) is not None else arg.group(2)
            if word == "env":
                return scope.env.get(name, "")
            variables = scope.roots.get("var", {})
            if name not in variables:
                raise EvalError(f'user variable {name!r} is not declared in "variables"')
            value = variables[name]
            return "" if value is None else str(value)
        if word == "timestamp" and not rest.strip():
            if "unix" not in scope.state:
                scope.state["unix"] = str(int(_dt.datetime.now(_dt.UTC).timestamp()))
            return scope.state["unix"]
        if word == "isotime":
            now = _dt.datetime.now(_dt.UTC)
            arg = re.fullmatch(_ARG, rest) if rest.strip() else None
            if rest.strip() and not arg:
                raise EvalError(f"{{{{{inner}}}}}: expected isotime or isotime `layout`")
            if not arg:
                return now.strftime("%Y-%m-%dT%H:%M:%SZ")
            return _go_time(now, arg.group(1) if arg.group(1) is not None else arg.group(2))
        if word == "uuid" and not rest.strip():
            return str(uuid.uuid4())
        if word == "pwd" and not rest.strip():
            return str(scope.cwd)
        if word == "template_dir" and not rest.strip():
            return str(scope.root_dir)
        return m.group(0)  # builder-time data ({{ .HTTPIP }}, {{build_name}}, ...)

    return _CALL.sub(call, text)


_GO_LAYOUT = [
    ("2006", "%Y"),
    ("01", "%m"),
    ("02", "%d"),
    ("15", "%H"),
    ("04", "%M"),
    ("05", "%S"),
    ("Jan", "%b"),
    ("Mon", "%a"),
    ("MST", "UTC"),
]


def _go_time(now: _dt.datetime, layout: str) -> str:
    out = layout.replace("%", "%%")
    for go, py in _GO_LAYOUT:
        out = out.replace(go, py)
    return now.strftime(out)
