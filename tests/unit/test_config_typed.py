"""Builder configs are typed: every option has an annotation on the builder's Config
subclass, a prepared config holds values of those types, and it is read-only."""

from __future__ import annotations

import ast
import types
import typing
from pathlib import Path

import pytest
from packwrap_qemu.builder import QemuBuilder
from packwrap_vmm.builder import VmmBuilder

from packwrap.config.schema import Config, SourceBody
from packwrap.config.size import Size
from packwrap.template import load_template

REPO = Path(__file__).resolve().parents[2]
BUILDERS = [QemuBuilder, VmmBuilder]
DERIVED: set[str] = set()  # keys a check adds that are not options (none today)


def conforms(value: object, hint: object) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(conforms(v, item) for v in value)
    if origin is dict:
        k, v = typing.get_args(hint)
        return isinstance(value, dict) and all(
            conforms(a, k) and conforms(b, v) for a, b in value.items()
        )
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    assert isinstance(hint, type), hint
    return isinstance(value, hint)


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.type_name)
def test_every_option_is_annotated(builder):
    hints = typing.get_type_hints(builder.schema.config_type)
    assert builder.schema.config_type is not Config
    missing = set(builder.schema.options) - set(hints)
    assert not missing, f"annotate {sorted(missing)} on {builder.schema.config_type.__name__}"
    assert set(hints) - set(builder.schema.options) - {"_frozen"} <= DERIVED


@pytest.mark.parametrize("settings", [[("var", "communicator=ssh")]])
def test_the_blueprint_project_prepares_to_the_annotated_types(tmp_path, settings):
    from packwrap.blueprint import new

    plan = new.plan("openbsd-76", tmp_path / "p", var_args=["ssh_public_key_file="])
    new.settle_password(plan, password=None, no_password=True, prompt=None)
    new.execute(plan)
    template = load_template(tmp_path / "p", settings=settings, env={})
    assert {b.source.type for b in template.builds} == {"qemu", "openbsd-vmm"}
    for build in template.builds:
        builder = {b.type_name: b for b in BUILDERS}[build.source.type]
        config, problems, _ = builder.schema.prepare(build.source.body)
        assert problems == []
        assert type(config) is builder.schema.config_type
        hints = typing.get_type_hints(type(config))
        wrong = {k: v for k, v in config.items() if k in hints and not conforms(v, hints[k])}
        assert not wrong, wrong
        assert isinstance(config.disk_size, Size)


def test_a_prepared_config_is_read_only():
    config, problems, _ = QemuBuilder.schema.prepare(
        SourceBody({"kernel": "bsd.rd", "communicator": "none"})
    )
    assert problems == []
    with pytest.raises(TypeError, match="read-only"):
        config["memory"] = Size.of_mib(1)
    with pytest.raises(TypeError, match="read-only"):
        config.update(memory=1)


# The core modules that read a build's config read it typed: through config_of(state)
# (packwrap/build/state.py) and attributes, never `.get("name")` or `config["name"]`,
# which are Any to the type checker (pyproject's mypy block holds them to strict flags).
TYPED_READERS = [
    "packwrap/build/common_options.py",
    "packwrap/build/steps/boot_command.py",
    "packwrap/build/steps/http_server.py",
    "packwrap/build/steps/install_cache.py",
    "packwrap/installcache/key.py",
    "packwrap/communicator/steps.py",
    "packwrap/provision/shell.py",
    "packwrap/provision/shutdown.py",
    "packwrap/provision/generalize.py",
    "packwrap/provision/buildrecord.py",
    "packwrap/provision/step.py",
    "packwrap/postprocess/base.py",
]
CONFIG_NAMES = {"config", "cfg", "block_config"}


def _is_config(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in CONFIG_NAMES
    return isinstance(node, ast.Attribute) and node.attr == "config"


def _untyped_reads(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and _is_config(node.func.value)
        ):
            found.append(f"{path.name}:{node.lineno}: .get on the config")
        load = isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
        if load and isinstance(node, ast.Subscript) and _is_config(node.value):
            found.append(f"{path.name}:{node.lineno}: config[...] read")
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "config"
            and isinstance(node.value, ast.Name)
            and node.value.id == "state"
        ):
            found.append(f"{path.name}:{node.lineno}: state.config (use config_of(state))")
    return found


@pytest.mark.parametrize("module", TYPED_READERS)
def test_core_modules_read_the_config_typed(module):
    assert _untyped_reads(REPO / module) == []


def test_the_guard_finds_untyped_reads(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f(state, cfg):\n    a = state.config.get('x')\n    b = cfg['y']\n    return a, b\n"
    )
    assert len(_untyped_reads(bad)) == 3  # state.config, its .get, cfg[...]


def test_config_of_is_typed_and_strict():
    from packwrap_qemu.config import QemuConfig
    from packwrap_vmm.config import VmmConfig

    from packwrap.build.common_options import CommonConfig
    from packwrap.build.state import config_of
    from tests.state_support import make_state

    config, problems, _ = QemuBuilder.schema.prepare(
        SourceBody({"kernel": "bsd.rd", "communicator": "none"})
    )
    assert problems == []
    state = make_state(config)
    assert config_of(state) is config and config_of(state, QemuConfig) is config
    with pytest.raises(TypeError, match="expected a VmmConfig, got QemuConfig"):
        config_of(state, VmmConfig)
    # a builder without a typed config (a plain Config) reads over the common defaults
    untyped = make_state(None)
    untyped.config = Config({"boot_command": ["x"]})
    common = config_of(untyped)
    assert isinstance(common, CommonConfig)
    assert common.boot_command == ["x"] and common.http_port_min == 8000
    with pytest.raises(TypeError, match="read-only"):
        common["boot_command"] = []
