"""README's "options: N/M" for the qemu builder, measured against packer-plugin-qemu's
option list (tests/data/packer_plugin_qemu_options.txt, which names the revision read)."""

from __future__ import annotations

import re
from pathlib import Path

from packwrap_qemu.config import IGNORED_BY_PACKER_QEMU, SCHEMA, SILENTLY_WITHOUT_EFFECT

REPO = Path(__file__).resolve().parents[2]
OPTIONS_FILE = REPO / "tests" / "data" / "packer_plugin_qemu_options.txt"


def plugin_options() -> list[str]:
    lines = OPTIONS_FILE.read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def accepted() -> set[str]:
    names = set(SCHEMA.options) | set(SCHEMA.aliases)
    return {n for n in plugin_options() if n in names}


def honoured() -> set[str]:
    """Accepted and not `ignored` (an ignored option loads but has no effect)."""
    ignored = {name for name, opt in SCHEMA.options.items() if opt.ignored}
    ignored |= set(SILENTLY_WITHOUT_EFFECT)
    return {n for n in accepted() if SCHEMA.aliases.get(n, n) not in ignored}


def ignored_as_packer() -> set[str]:
    """Accepted without effect because Packer's own qemu builder ignores them too."""
    return {n for n in accepted() if n in IGNORED_BY_PACKER_QEMU}


def test_options_ignored_as_packer_are_ignored_options():
    """The third column holds only options packwrap ignores (with the usual warning),
    each with a help text saying so or listed in README."""
    for name in IGNORED_BY_PACKER_QEMU:
        assert SCHEMA.options[name].ignored, name
    assert honoured().isdisjoint(ignored_as_packer())


def test_list_records_the_revision_read():
    text = OPTIONS_FILE.read_text()
    assert re.search(r"commit [0-9a-f]{40}", text)
    assert "1.1.5-dev" in text
    names = plugin_options()
    assert len(names) == len(set(names)) == 129


def test_readme_option_counts_are_measured():
    """Fails when support drops (and when it grows, so the README is updated)."""
    readme = (REPO / "README.md").read_text()
    m = re.search(
        r"options: (\d+)/(\d+) accepted, (\d+)/\d+ honoured, (\d+)/\d+ ignored by "
        r"Packer's qemu builder too",
        readme.replace("\n", " "),
    )
    assert m, "README.md must state 'options: N/M accepted, H/M honoured, P/M ignored by ...'"
    total = len(plugin_options())
    assert int(m.group(2)) == total
    missing = sorted(set(plugin_options()) - accepted())
    assert len(accepted()) >= int(m.group(1)), missing
    assert len(accepted()) == int(m.group(1)), "support grew: update the README count"
    assert len(honoured()) >= int(m.group(3)), sorted(accepted() - honoured())
    assert len(honoured()) == int(m.group(3)), "support grew: update the README count"
    assert len(ignored_as_packer()) == int(m.group(4)), sorted(ignored_as_packer())
    unexplained = accepted() - honoured() - ignored_as_packer()
    assert not unexplained, f"accepted, without effect, and Packer honours them: {unexplained}"


def test_the_options_without_effect_are_known():
    """Each accepted-but-ignored option has a reason in the README."""
    readme = (REPO / "README.md").read_text()
    for name in sorted(accepted() - honoured()):
        stem = re.sub(r"_.*", "_", name) if name.startswith(("vnc_", "winrm_")) else name
        assert f"`{stem}" in readme, f"README does not say why {name} has no effect"
