"""The drift guard and the transcript reader, on a transcript the fixture produced."""

from __future__ import annotations

from pathlib import Path

import pytest

from packwrap.autoinstall.drift import DriftGuard, InstallerDrift
from packwrap.autoinstall.release import load_release
from packwrap.autoinstall.transcript import installer_questions, parse_transcript
from packwrap.errors import PackwrapError

# A QEMU build's console log of the fixture's 7.6 install (scripts/fixture).
FIXTURE_LOG = (Path(__file__).parent / "data" / "fixture-7.6-install.console.log").read_text()
RESPONSE = "System hostname = kern\nPassword for root account = *************\n"
EXTRA = "Enable the frobnicator? (yes or no)"


def with_question(line: str, *, end: str = "\n") -> str:
    """The fixture's transcript with one more question before the timezone."""
    before, sep, after = FIXTURE_LOG.partition("What timezone are you in?")
    return before + line + end + (sep + after if end else "")


def test_every_question_of_the_fixture_transcript_is_known_with_default_and_answer():
    asked = parse_transcript(FIXTURE_LOG, load_release("7.6"))
    assert all(a.prompt is not None and a.complete for a in asked)
    by_id = {a.prompt.id: a for a in asked if a.prompt}
    assert by_id["ipv6_address"].question == "IPv6 address for vio0? (or 'autoconf' or 'none')"
    assert (by_id["ipv6_address"].default, by_id["ipv6_address"].answer) == ("none", "none")
    assert by_id["com0_speed"].default == "115200"  # ask_which's "(or 'done')" skipped
    assert by_id["ipv4_route"].default is None and by_id["ipv4_route"].answer == "none"
    assert [a.prompt.id for a in asked if a.prompt].count("sets_location") == 2


def test_a_transcript_without_questions_is_an_error():
    with pytest.raises(PackwrapError, match="no installer questions"):
        installer_questions("SeaBIOS\r\nBooting from ROM...\r\n", load_release("7.6"))


def test_known_questions_pass_silently_and_the_release_comes_from_the_banner():
    guard = DriftGuard(response_for=lambda url: RESPONSE)
    assert guard.check(FIXTURE_LOG) == []
    assert guard.release is not None and guard.release.release == "7.6"


def test_an_unknown_question_that_took_its_default_is_a_warning_once():
    seen: list[str] = []
    guard = DriftGuard(response_for=lambda url: seen.append(url) or RESPONSE)
    text = with_question(f"{EXTRA} [no] no")
    [warning] = guard.check(text)
    assert f'"{EXTRA}"' in warning and "took its default 'no'" in warning
    assert "OpenBSD 7.6 release data" in warning and "releases/7.6.toml" in warning
    assert seen == ["http://10.0.2.100:80/install.conf"]
    assert guard.check(text) == []


def test_an_unknown_question_answered_from_the_file_names_the_line():
    guard = DriftGuard(response_for=lambda url: RESPONSE + "Enable the frobnicator = yes\n")
    [warning] = guard.check(with_question(f"{EXTRA} [no] yes"))
    assert "answered 'yes' by response file line 3" in warning


def test_an_unknown_question_without_an_answer_fails_at_once():
    text = with_question(f"{EXTRA} \r\nQuestion has no answer in response file.")
    with pytest.raises(InstallerDrift, match="the response file has no answer") as err:
        DriftGuard().check(text)
    assert f'"{EXTRA}"' in str(err.value) and "releases/7.6.toml" in str(err.value)


def test_an_unknown_question_waiting_on_a_quiet_console_fails():
    text = with_question(f"{EXTRA} [no] ", end="")
    guard = DriftGuard()
    assert guard.check(text, quiet_for=0.5) == []  # the answer may still come
    with pytest.raises(InstallerDrift, match="the installer is waiting"):
        guard.check(text, quiet_for=5.0)


def test_a_release_without_data_is_a_warning_not_a_check():
    text = FIXTURE_LOG.replace("OpenBSD/amd64 7.6 installation", "OpenBSD/amd64 9.9 installation")
    guard = DriftGuard()
    [warning] = guard.check(with_question(f"{EXTRA} [no] no").replace("7.6 inst", "9.9 inst"))
    assert "OpenBSD/amd64 9.9, which packwrap has no release data" in warning
    assert guard.check(text) == []


def test_a_snapshot_installer_is_checked_against_the_snapshots_data():
    text = FIXTURE_LOG.replace("OpenBSD/amd64 7.6 installation", "OpenBSD/amd64 8.1 installation")
    guard = DriftGuard()
    assert guard.check(text) == []
    assert guard.release is not None and guard.release.release == "snapshots"


def test_boot_messages_before_the_installer_banner_are_not_questions():
    boot = "Probing ACPI? Is this a question? [maybe]\r\n"
    guard = DriftGuard()
    assert guard.check(boot + FIXTURE_LOG) == []
