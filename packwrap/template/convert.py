"""Legacy JSON template -> HCL2 text, like `packer hcl2_upgrade`.

`{{user `x`}}` becomes `${var.x}`, `{{env `X`}}` `env("X")` (in variable defaults),
`{{timestamp}}` `${local.timestamp}`, `{{isotime}}` `${timestamp()}`, `{{uuid}}`
`${uuidv4()}`, `{{pwd}}` `${path.cwd}`, `{{template_dir}}` `${path.root}`;
builder-time data such as `{{ .HTTPIP }}` stays as it is (HCL leaves `{{ }}` alone).
"""

from __future__ import annotations

import re
from typing import Any

from packwrap.errors import PackwrapError
from packwrap.template.hcl_emit import (
    Attribute,
    Blank,
    Block,
    Comment,
    Expr,
    emit,
    quote,
    template_fragment,
)
from packwrap.template.json_reader import load_json
from packwrap.template.jsonpos import PosDict
from packwrap.template.legacy import _TOP_KEYS, is_legacy

_CALL = re.compile(r"\{\{-?(.*?)-?\}\}", re.S)
_ARG = re.compile(r"\s*(?:`([^`]*)`|\"([^\"]*)\")\s*\Z")
_GO_TO_HCL_DATE = [
    ("2006", "YYYY"),
    ("01", "MM"),
    ("02", "DD"),
    ("15", "hh"),
    ("04", "mm"),
    ("05", "ss"),
    ("Jan", "MMM"),
    ("Mon", "EEE"),
]


class _Converter:
    def __init__(self, file: str):
        self.file = file
        self.uses_timestamp = False
        self.warnings: list[str] = []
        self.names: dict[str, str] = {}  # builder name -> "type.name"
        # Variables whose default uses another variable: HCL2 forbids that in a
        # variable default, so (like Packer's upgrade) they become locals.
        self.as_locals: set[str] = set()
        self.env_vars: dict[str, str] = {}  # variable name -> environment variable

    def expression(self, inner: str, *, in_default: bool) -> str | None:
        """HCL expression text for one legacy call, or None to keep it literally."""
        word, _, rest = inner.strip().partition(" ")
        arg = _ARG.match(rest)
        name = (arg.group(1) if arg.group(1) is not None else arg.group(2)) if arg else None
        if word == "user" and name is not None:
            return f"local.{name}" if name in self.as_locals else f"var.{name}"
        if word == "env" and name is not None:
            if in_default:
                return f"env({quote(name)})"
            # Packer allows env() only in variable defaults: go through a variable.
            var = "env_" + re.sub(r"[^A-Za-z0-9_]", "_", name)
            self.env_vars[var] = name
            return f"var.{var}"
        if not rest.strip():
            simple = {
                "timestamp": "local.timestamp",
                "isotime": "timestamp()",
                "uuid": "uuidv4()",
                "pwd": "path.cwd",
                "template_dir": "path.root",
            }
            if word == "timestamp":
                self.uses_timestamp = True
            if word in simple:
                return simple[word]
        if word == "isotime" and name is not None:
            layout = name
            for go, hcl in _GO_TO_HCL_DATE:
                layout = layout.replace(go, hcl)
            return f"formatdate({quote(layout)}, timestamp())"
        if not word.startswith(".") and word not in ("build_name", "build_type"):
            self.warnings.append(f"{{{{{inner.strip()}}}}} is left as it is")
        return None

    def string(self, text: str, *, in_default: bool = False) -> Any:
        """A legacy string as an HCL value (a str literal when nothing is interpolated)."""
        parts: list[str] = []
        last = 0
        dynamic = False
        whole: str | None = None
        for m in _CALL.finditer(text):
            expr = self.expression(m.group(1), in_default=in_default)
            literal = text[last : m.start()]
            parts.append(template_fragment(literal))
            if expr is None:
                parts.append(template_fragment(m.group(0)))
            else:
                dynamic = True
                parts.append("${" + expr + "}")
                if m.start() == 0 and m.end() == len(text):
                    whole = expr
            last = m.end()
        if not dynamic:
            return text
        if whole is not None:
            return Expr(whole)
        parts.append(template_fragment(text[last:], before_interpolation=False))
        return Expr('"' + "".join(parts) + '"')

    def value(self, v: Any) -> Any:
        if isinstance(v, str):
            return self.string(v)
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if isinstance(v, dict):
            return {k: self.value(x) for k, x in v.items()}
        return v

    def body(self, obj: dict, skip: tuple[str, ...] = ()) -> list:
        return [Attribute(k, self.value(v)) for k, v in obj.items() if k not in skip]

    def plugin_block(self, kind: str, obj: Any) -> Block:
        if isinstance(obj, str):
            return Block(kind, [obj], [])
        items = []
        for k, v in obj.items():
            if k == "type":
                continue
            if k in ("only", "except") and isinstance(v, list):
                items.append(Attribute(k, [self.names.get(n, n) for n in v]))
            elif k == "override" and isinstance(v, dict):
                items.append(
                    Attribute(k, {self.names.get(n, n): self.value(x) for n, x in v.items()})
                )
            else:
                items.append(Attribute(k, self.value(v)))
        return Block(kind, [obj["type"]], items)


def convert_legacy(text: str, file: str) -> tuple[str, list[str]]:
    """(HCL2 text, warnings) for a legacy JSON template."""
    data = load_json(text, file)
    if not is_legacy(data):
        raise PackwrapError(
            'not a legacy JSON template (no "builders"); nothing to convert', file=file, line=1
        )
    for key in data:
        if key not in _TOP_KEYS and not key.startswith("_"):
            raise PackwrapError(
                f"unknown top-level key {key!r}", file=file, line=data.key_lines[key]
            )
    c = _Converter(file)
    out: list[Any] = [
        Comment("Converted from a legacy JSON template by 'packwrap convert'."),
        Comment("Check it with: packwrap validate <this file>"),
    ]
    if isinstance(data.get("description"), str):
        out += [Comment(line) for line in ("", *data["description"].splitlines())]
    if data.get("min_packer_version"):
        out += [
            Blank(),
            Block(
                "packer",
                [],
                [Attribute("required_version", f">= {data['min_packer_version']}")],
            ),
        ]
    sensitive = set(data.get("sensitive-variables") or [])
    variables: PosDict = data.get("variables") or PosDict()
    for name, default in variables.items():
        if default is not None and not isinstance(default, str):
            line = variables.key_lines[name]
            raise PackwrapError(
                f"variable {name!r}: default must be a string", file=file, line=line
            )
        if isinstance(default, str) and re.search(r"\{\{-?\s*user\s", default):
            c.as_locals.add(name)
    local_items: list[Any] = []
    for name, default in variables.items():
        if name in c.as_locals:
            local_items.append(Attribute(name, c.string(default)))
            continue
        items: list[Any] = [Attribute("type", Expr("string"))]
        if default is not None:
            items.append(Attribute("default", c.string(default, in_default=True)))
        if name in sensitive:
            items.append(Attribute("sensitive", True))
        out += [Blank(), Block("variable", [name], items)]

    sources = []
    builders = data.get("builders")
    if not isinstance(builders, list) or not builders:
        raise PackwrapError('"builders" must be a non-empty list', file=file, line=1)
    source_blocks: list[Block] = []
    for b in builders:
        if not isinstance(b, dict) or not isinstance(b.get("type"), str):
            raise PackwrapError(
                'each builder needs a "type"', file=file, line=getattr(b, "line", 1)
            )
        name = b["name"] if "name" in b else b["type"]
        c.names[name] = f"{b['type']}.{name}"
        sources.append(f"source.{b['type']}.{name}")
        source_blocks.append(Block("source", [b["type"], name], c.body(b, ("type", "name"))))

    build: list[Any] = [Attribute("sources", sources)]
    for p in data.get("provisioners") or []:
        build += [Blank(), c.plugin_block("provisioner", p)]
    for chain in data.get("post-processors") or []:
        if isinstance(chain, list):
            inner = [c.plugin_block("post-processor", pp) for pp in chain]
            build += [Blank(), Block("post-processors", [], inner)]
        else:
            build += [Blank(), c.plugin_block("post-processor", chain)]

    if c.uses_timestamp:
        # Packer's own upgrade does the same: {{timestamp}} had no separators.
        stamp = Expr('regex_replace(timestamp(), "[- TZ:]", "")')
        local_items.insert(0, Attribute("timestamp", stamp))
    for var, env_name in c.env_vars.items():
        if var in variables:
            raise PackwrapError(
                f"variable {var!r} clashes with the one made for {{{{env `{env_name}`}}}}",
                file=file,
                line=variables.key_lines[var],
            )
        default = Attribute("default", Expr(f"env({quote(env_name)})"))
        out += [Blank(), Block("variable", [var], [Attribute("type", Expr("string")), default])]
    if local_items:
        out += [Blank(), Block("locals", [], local_items)]
    for block in source_blocks:
        out += [Blank(), block]
    out += [Blank(), Block("build", [], build)]
    return emit(out), c.warnings
