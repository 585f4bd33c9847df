"""`packwrap release add`: a release data file from a transcript the fixture produced."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from packwrap.autoinstall.release import merged_data
from packwrap.cli import main

LOG = Path(__file__).parent / "data" / "fixture-7.6-install.console.log"
EXTRA = "Enable the frobnicator? (yes or no) [no] no\r\n"


def add(*args: str) -> int:
    return main(["release", "add", *args])


def test_a_known_install_gives_the_nearest_releases_questions_and_conditions(tmp_path, capsys):
    out = tmp_path / "7.6.toml"
    assert add("7.6", "--from-transcript", str(LOG), "-o", str(out)) == 0
    printed = capsys.readouterr().out
    assert '+release = "7.6"' in printed and "--- 7.5.toml" in printed  # the diff to review
    assert "25 questions" in printed and "0 unknown to 7.5" in printed
    data = tomllib.loads(out.read_text())
    nearest = merged_data("7.5")
    assert [p["id"] for p in data["prompt"]] == [p["id"] for p in nearest["prompt"]]
    assert [p["condition"] for p in data["prompt"]] == [p["condition"] for p in nearest["prompt"]]
    assert (data["release"], data["version"], data["arch"]) == ("7.6", "76", "amd64")
    assert "fixture-7.6-install.console.log" in data["source"]
    # the timezone default after the sets is the etc set's link (the fixture's since it
    # follows install.sub 1.1266: scripts/fixture/README.md)
    assert data["etc_localtime"] == "Canada/Mountain"


def test_new_questions_and_drifted_defaults_show_in_order_and_in_the_diff(tmp_path, capsys):
    text = LOG.read_text()
    text = text.replace("[none] none\nAvailable network", "[autoconf] none\nAvailable network")
    text = text.replace("What timezone are you in?", EXTRA + "What timezone are you in?")
    log = tmp_path / "install.console.log"
    log.write_text(text)
    out = tmp_path / "7.6.toml"
    assert add("7.6", "--from-transcript", str(log), "--output", str(out)) == 0
    printed = capsys.readouterr().out
    data = tomllib.loads(out.read_text())
    ids = [p["id"] for p in data["prompt"]]
    new = data["prompt"][ids.index("enable_the_frobnicator")]
    assert ids.index("enable_the_frobnicator") == ids.index("sets_location") + 1
    assert (new["text"], new["kind"], new["default"]) == (
        "Enable the frobnicator? (yes or no)",
        "yesno",
        "no",
    )
    assert data["prompt"][ids.index("ipv6_address")]["default"] == "autoconf"
    assert '+default = "autoconf"' in printed and "+# NEW in 7.6" in printed
    assert "1 unknown to 7.5" in printed


def test_never_overwrites_without_force(tmp_path, capsys):
    out = tmp_path / "7.6.toml"
    out.write_text("mine\n")
    assert add("7.6", "--from-transcript", str(LOG), "-o", str(out)) == 1
    assert "exists (use --force" in capsys.readouterr().err
    assert out.read_text() == "mine\n"
    assert add("7.6", "--from-transcript", str(LOG), "-o", str(out), "--force") == 0
    assert out.read_text().startswith("# OpenBSD 7.6 amd64")


def test_the_built_in_release_files_are_not_overwritten(capsys):
    assert add("7.6", "--from-transcript", str(LOG)) == 1
    assert "7.6.toml exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("release", "text", "needle"),
    [
        ("7.6", "SeaBIOS\r\nBooting from ROM...\r\n", "no installer questions"),
        ("8.0", None, "an install of OpenBSD 7.6, not 8.0"),
        ("eight", None, "not of the form X.Y"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, release, text, needle):
    log = tmp_path / "t.log"
    log.write_text(text if text is not None else LOG.read_text())
    out = tmp_path / "new.toml"
    assert add(release, "--from-transcript", str(log), "-o", str(out)) == 1
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
