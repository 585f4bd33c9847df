"""Builder configs are typed: every option has an annotation on the builder's Config
subclass, a prepared config holds values of those types, and it is read-only."""

from __future__ import annotations

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
