"""Per-arch installer data (releases/arch/*.toml over each release): the disk question,
INSTALL.<arch>, the console and X questions drive `new`, `lint` and the simulation."""

from __future__ import annotations

import pytest

from packwrap.autoinstall.lint import lint
from packwrap.autoinstall.release import known_arches, known_releases, load_release
from packwrap.autoinstall.render import render_install_conf
from packwrap.errors import PackwrapError

VALUES = {"hostname": "h", "root_password_hash": "*************", "timezone": "UTC"}


@pytest.mark.parametrize("release", known_releases())
def test_every_release_loads_for_every_arch(release):
    for arch in known_arches():
        rel = load_release(release, arch)
        assert rel.arch == arch
        assert f"INSTALL.{arch} not found" in rel["install_missing"].text


def test_arm64_questions():
    rel = load_release("7.6", "arm64")
    assert rel["disk_partitioning"].texts == (
        "Use (W)hole disk or (E)dit the MBR?",
        "Use (W)hole disk or (E)dit the GPT?",
    )
    for absent in ("com0_console", "com0_speed", "x_window_system", "xenodm", "gpt_proceed"):
        assert absent not in rel
    assert "arm64" in rel.source


def test_i386_questions():
    rel = load_release("7.6", "i386")
    assert rel["disk_partitioning"].text == "Use (W)hole disk or (E)dit the MBR?"
    assert "gpt_proceed" not in rel and "com0_console" in rel


def test_unknown_arch():
    with pytest.raises(PackwrapError, match="unknown arch 'sparc64' .*amd64, arm64, i386"):
        load_release("7.6", "sparc64")


def test_arm64_response_file_names_its_arch_and_asks_no_console_question():
    text = render_install_conf({**VALUES, "site_set": True}, "7.6", arch="arm64")
    assert "INSTALL.arm64 not found. Use sets found here anyway = yes" in text
    assert "com0" not in text and "X Window" not in text
    assert [f for f in lint(text, "7.6", arch="arm64") if f.is_error] == []


def test_whole_gpt_is_refused_where_the_installer_has_no_gpt_choice():
    gpt = {**VALUES, "disk_partitioning": "whole-gpt"}
    assert "(G)PT or (E)dit = gpt" in render_install_conf(gpt, "7.6")
    for arch in ("arm64", "i386"):
        with pytest.raises(PackwrapError, match=f"OpenBSD/{arch} installer asks 'Use"):
            render_install_conf(gpt, "7.6", arch=arch)


def test_lint_reads_the_arch_question_set():
    amd64_line = "Use (W)hole disk MBR, whole disk (G)PT or (E)dit = gpt\n"
    text = render_install_conf(VALUES, "7.6") + amd64_line
    assert not [f for f in lint(text, "7.6") if f.is_error]
    arm = lint(text, "7.6", arch="arm64")
    assert any("(G)PT" in str(f) for f in arm), arm  # answers nothing arm64 asks


def test_lint_command_takes_the_arch(tmp_path, monkeypatch, capsys):
    from packwrap.cli import main

    project = tmp_path / "proj"
    (project / "http").mkdir(parents=True)
    text = render_install_conf(VALUES, "7.6") + "Use (W)hole disk or (E)dit the MBR = whole\n"
    (project / "http" / "install.conf.pkr.in").write_text(text)
    monkeypatch.chdir(project)
    assert main(["lint", "--arch", "arm64"]) == 0
    assert "OK for OpenBSD 7.6/arm64" in capsys.readouterr().out
    assert main(["lint"]) == 1  # amd64 (the default) asks no such question
    assert "matches no question" in capsys.readouterr().err
