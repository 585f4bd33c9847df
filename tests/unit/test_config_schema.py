"""The schema every builder declares: defaults, types, aliases, did-you-mean, all problems."""

from __future__ import annotations

from packwrap.config import Option, Schema
from packwrap.config.schema import BOOL, DURATION, INT, LIST, SourceBody

SCHEMA = Schema(
    [
        Option("vm_name", required=True),
        Option("memory", INT, default=512),
        Option("headless", BOOL, default=False),
        Option("boot_wait", DURATION, default=10.0),
        Option("accelerator", default="auto", choices=("auto", "kvm", "tcg", "none")),
        Option("cdrom", aliases=("iso_image",)),
        Option("qemuargs", LIST, default=[]),
    ],
    [lambda c, problem: problem("memory too small", "memory") if c.memory < 64 else None],
)


def prepare(values, lines=None):
    return SCHEMA.prepare(SourceBody(values, file="t.pkr.hcl", line=3, lines=lines or {}))


def test_defaults_types_and_aliases():
    config, problems, warnings = prepare(
        {"vm_name": "x", "memory": "1024", "boot_wait": "1m30s", "iso_image": "a.iso"}
    )
    assert problems == [] and warnings == []
    assert config.memory == 1024 and config.boot_wait == 90.0 and config.cdrom == "a.iso"
    assert config.headless is False and config.accelerator == "auto" and config.qemuargs == []


def test_empty_string_means_unset_for_choices_and_typed_options():
    config, problems, _ = prepare({"vm_name": "x", "accelerator": "", "memory": ""})
    assert problems == []
    assert config.accelerator == "auto" and config.memory == 512


def test_every_problem_reported_with_its_line():
    _, problems, _ = prepare(
        {"memroy": 1, "headless": "maybe", "accelerator": "hax9", "boot_wait": "soon"},
        lines={"memroy": 5, "headless": 6, "accelerator": 7, "boot_wait": 8},
    )
    text = [str(p) for p in problems]
    assert "t.pkr.hcl:5: unknown option 'memroy'; did you mean 'memory'?" in text
    assert any(t.startswith("t.pkr.hcl:6: option 'headless': expected bool") for t in text)
    assert any(
        t.startswith("t.pkr.hcl:7: option 'accelerator': 'hax9' is not one of") for t in text
    )
    assert any(t.startswith("t.pkr.hcl:8: invalid duration") for t in text)
    assert "t.pkr.hcl:3: missing required option 'vm_name'" in text


def test_alias_and_name_together_is_a_conflict():
    _, problems, _ = prepare({"vm_name": "x", "cdrom": "a", "iso_image": "b"})
    assert any("are the same option" in p.message for p in problems)


def test_checks_run_only_on_a_clean_config():
    _, problems, _ = prepare({"vm_name": "x", "memory": 32})
    assert [p.message for p in problems] == ["memory too small"]
