"""`packwrap lint` on small hand-written response files: each class of finding, by line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packwrap.autoinstall.lint import lint
from packwrap.autoinstall.passwords import hash_password
from packwrap.cli import main

HASH = hash_password("root-pw")
UHASH = hash_password("user-pw")

GOOD = f"""\
# a hand-written 7.6 response file
System hostname = web1
Password for root account = {HASH}
Setup a user = alice
Password for user alice = {UHASH}
Public ssh key for user alice = ssh-ed25519 AAAAC3Nza alice@laptop
What timezone are you in = Europe/Berlin
Location of sets = cd0
Set name(s) = -game* -x*
Directory does not contain SHA256.sig. Continue without verification = yes
Default IPv4 route = none
"""


def found(text: str, release: str = "7.6", **kw) -> list[tuple[int, str, str]]:
    return [(f.line, f.severity, f.message) for f in lint(text, release, **kw)]


def test_a_good_file_is_clean_and_pkr_in_placeholders_are_fine():
    assert lint(GOOD, "7.6") == []
    pkr_in = (
        GOOD
        + (
            "Location of sets = http\n"
            "HTTP Server = http://{{ .HTTPIP }}:{{ .HTTPPort }}\n"
            "Server directory = site\n"
            "INSTALL.amd64 not found. Use sets found here anyway = yes\n"
            "Set name(s) = site*\n"
            "Directory does not contain SHA256.sig. Continue without verification = yes\n"
        )
    ).replace("Set name(s) = -game* -x*\n", "Set name(s) = -game* -x*\nSet name(s) = done\n")
    assert lint(pkr_in, "7.6") == []


def test_typo_key_matches_no_question_and_gets_a_suggestion():
    text = GOOD.replace("Setup a user = alice", "Setup an user = alice")
    f = found(text)
    assert (
        4,
        "error",
        "'Setup an user' matches no question of the 7.6 installer; did you mean 'Setup a user'?",
    ) in f


def test_broad_key_steals_another_questions_answer():
    # "Password" is meant for the user, but the root password question comes first and
    # takes it; the root line then answers nothing and the user has no password.
    text = (
        "System hostname = web1\n"
        f"Password = {UHASH}\n"
        f"Password for root account = {HASH}\n"
        "Setup a user = alice\n"
        "What timezone are you in = UTC\n"
    )
    f = found(text)
    assert (
        2,
        "error",
        "the key 'Password' steals the answer to \"Password for root account?\" from line 3",
    ) in f
    assert any(line == 0 and "Password for user alice?" in msg for line, _, msg in f)


def test_set_names_for_a_later_round_taken_by_the_repeated_question():
    text = (
        "System hostname = web1\n"
        f"Password for root account = {HASH}\n"
        "What timezone are you in = UTC\n"
        "Location of sets = cd0\n"
        "Set name(s) = -game*\n"
        "Directory does not contain SHA256.sig. Continue without verification = yes\n"
        "Location of sets = http\n"
        "HTTP Server = http://{{ .HTTPIP }}:{{ .HTTPPort }}\n"
        "Server directory = site\n"
        "INSTALL.amd64 not found. Use sets found here anyway = yes\n"
        "Set name(s) = site*\n"
        "Directory does not contain SHA256.sig. Continue without verification = yes\n"
    )
    errors = [(line, msg) for line, sev, msg in found(text) if sev == "error"]
    assert errors == [
        (
            11,
            "written for set round 2 but taken by the repeated \"Set name(s)? (or 'abort' or "
            "'done')\" of set round 1 (it repeats until 'done': answer 'done' first); "
            "round 2 then gets the default",
        )
    ]


def test_unanswered_question_without_default():
    text = "System hostname = web1\nLocation of sets = cd0\n"
    f = found(text)
    assert f[0][:2] == (0, "error")
    assert '"Password for root account?"' in f[0][2] and "no default" in f[0][2]


@pytest.mark.parametrize("release", ["7.5", "7.6", "8.0"])
def test_offline_install_without_a_timezone_gets_the_etc_sets_default(release):
    # after the sets, offline, the default is the etc set's /etc/localtime: no abort
    text = GOOD.replace("What timezone are you in = Europe/Berlin\n", "")
    assert found(text, release) == [
        (
            0,
            "warning",
            "no answer for \"What timezone are you in? ('?' for list)\": the installed system "
            "gets the etc set's default timezone Canada/Mountain",
        )
    ]


def test_yes_no_question_answered_otherwise():
    text = GOOD.replace(
        "Location of sets = cd0", "Start sshd(8) by default = maybe\nLocation of sets = cd0"
    )
    assert (
        8,
        "error",
        "\"Start sshd(8) by default?\": 'maybe' is not yes or no: the autoinstall aborts "
        "at this question",
    ) in found(text)


@pytest.mark.parametrize(
    ("line", "answer", "expected"),
    [
        ("Location of sets = ftp", "ftp", "'ftp' is not one of the allowed answers"),
        ("Which speed should com0 use = 12345", "12345", "'12345' is not one of"),
        ("Allow root ssh login = sometimes", "sometimes", "'sometimes' is not one of"),
    ],
)
def test_choice_outside_the_allowed_answers(line, answer, expected):
    text = GOOD.replace("Location of sets = cd0", line + ("\nLocation of sets = cd0"))
    text = text.replace("Location of sets = ftp\nLocation of sets = cd0", "Location of sets = ftp")
    hits = [(n, sev, msg) for n, sev, msg in found(text) if expected in msg]
    assert hits and hits[0][0] == 8 and hits[0][1] == "error", found(text)


@pytest.mark.parametrize("answer", ["cd0", "cd", "CD", "c"])
def test_cd_location_forms_install_sets_takes(answer):
    # install.sub 1.1266 install_sets: [cC]?([dD]) is the first CD, cd0 names it
    assert found(GOOD.replace("Location of sets = cd0", f"Location of sets = {answer}")) == []


def test_cd_location_that_names_no_cd_device_installs_nothing():
    # any other c... answer goes to make_dev, which fails: no sets, then the default
    # 'done' asks "Are you *SURE*..." and the autoinstall aborts
    f = found(GOOD.replace("Location of sets = cd0", "Location of sets = cdrom"))
    assert (8, "warning", "'cdrom' names no CD device (cd0): nothing is installed from it "
            "(answer 'cd0' or 'cd')") in f  # fmt: skip
    assert any(sev == "error" and "*SURE*" in msg for _, sev, msg in f), f


def test_plaintext_passwords_are_errors():
    text = GOOD.replace(HASH, "hunter2").replace(UHASH, "alice123")
    f = [(line, sev) for line, sev, msg in found(text) if "plaintext password" in msg]
    assert f == [(3, "error"), (5, "error")]


def test_line_never_asked_and_interactive_editor():
    text = GOOD.replace(
        "What timezone", "Exit to (S)hell, (H)alt or (R)eboot = halt\nWhat timezone"
    )
    assert (
        7,
        "warning",
        '"Exit to (S)hell, (H)alt or (R)eboot?" is never asked under autoinstall',
    ) in found(text)
    text = GOOD.replace(
        "Location of sets",
        "Use (A)uto layout, (E)dit auto layout, or create (C)ustom layout = c\nLocation of sets",
    )
    assert any(
        line == 8 and sev == "error" and "interactive disklabel editor" in msg
        for line, sev, msg in found(text)
    )


def test_user_questions_unused_without_a_user_and_bad_login():
    text = GOOD.replace("Setup a user = alice", "Setup a user = Alice")
    f = found(text)
    assert any(line == 4 and "not a usable loginname" in msg for line, _, msg in f)


def test_encryption_differs_by_release():
    text = GOOD.replace(
        "Location of sets",
        "Encrypt the root disk with a (p)assphrase or (k)eydisk = p\n"
        "New passphrase = correct horse\nLocation of sets",
    )
    assert lint(text, "7.6") == []
    # 7.5 asks both under autoinstall too (install.sub 1.1257/1.1259), unlike 7.4
    assert lint(text, "7.5") == []


def test_lint_command_exit_codes(tmp_path: Path, monkeypatch, capsys):
    project = tmp_path / "proj"
    (project / "http").mkdir(parents=True)
    conf = project / "http" / "install.conf.pkr.in"
    conf.write_text(GOOD)
    monkeypatch.chdir(project)
    assert main(["lint"]) == 0
    assert "OK for OpenBSD 7.6" in capsys.readouterr().out

    conf.write_text(GOOD + "Terminal type = vt100\nNo such question here = 1\n")
    assert main(["lint", "--release", "7.7"]) == 1
    err = capsys.readouterr().err
    assert "http/install.conf.pkr.in:13: error: 'No such question here' matches no question" in err

    warn_only = tmp_path / "w.conf"
    warn_only.write_text(GOOD + "Hostname without equals\n")
    assert main(["lint", str(warn_only)]) == 0
    out = capsys.readouterr()
    assert "w.conf:12: warning: not a 'question = answer' line" in out.out + out.err

    assert main(["lint", str(tmp_path / "missing.conf")]) == 1
    assert main(["lint", str(warn_only), "--release", "5.0"]) == 1
    assert "unknown OpenBSD release '5.0'" in capsys.readouterr().err


def test_lint_command_takes_the_release_from_the_project(tmp_path: Path, monkeypatch, capsys):
    (tmp_path / "http").mkdir()
    (tmp_path / ".packwrap").mkdir()
    (tmp_path / ".packwrap" / "project.json").write_text('{"release": "7.9", "values": {}}')
    (tmp_path / "http" / "install.conf").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    assert main(["lint"]) == 0
    assert "OK for OpenBSD 7.9" in capsys.readouterr().out


def test_dhcp_without_a_router_needs_the_default_route_answer():
    text = GOOD.replace("Default IPv4 route = none\n", "")
    assert [(line, sev) for line, sev, msg in found(text) if "Default IPv4 route" in msg] == [
        (0, "warning")
    ]
    qemu = found(text, answers_context={"dhcp_router": False})
    assert qemu[0][:2] == (0, "error") and "no default" in qemu[0][2]
    assert lint(GOOD, "7.6", answers_context={"dhcp_router": False}) == []


def test_lint_command_knows_a_project_without_site_dir(tmp_path: Path, monkeypatch, capsys):
    from packwrap.autoinstall.render import render_install_conf

    (tmp_path / "http").mkdir()
    conf = render_install_conf({"root_password_hash": HASH, "site_set": True}, "7.6")
    (tmp_path / "http" / "install.conf.pkr.in").write_text(conf)
    monkeypatch.chdir(tmp_path)
    assert main(["lint"]) == 1
    assert "site/ directory" in capsys.readouterr().err
    (tmp_path / "site").mkdir()
    assert main(["lint"]) == 0


_KEYS = [
    "System hostname",
    "Password",
    "Password for root account",
    "Setup a user",
    "Location of sets",
    "Set name(s)",
    "HTTP Server",
    "Server directory",
    "Continue anyway",
    "Continue without verification",
    "Use (W)hole disk",
    "Which disk is the root disk",
    "Encrypt the root disk with a (p)assphrase or (k)eydisk",
    "IPv4 address for",
    "Network interface to configure",
    "What timezone are you in",
    "root",
    "disk",
]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.sampled_from(_KEYS), st.text(max_size=30)),
            st.one_of(
                st.sampled_from(["yes", "no", "cd0", "http", "done", "site*", "-x*", "p", "vio0"]),
                st.text(max_size=20),
            ),
        ),
        max_size=25,
    ),
    st.sampled_from(["7.5", "7.6", "7.8"]),
)
def test_lint_never_crashes_on_arbitrary_files(pairs, release):
    text = "\n".join(f"{k} = {v}" for k, v in pairs)
    for f in lint(text, release, path="x.conf"):
        assert f.severity in ("error", "warning")
        assert 0 <= f.line <= len(text.split("\n"))
        assert str(f).startswith(f"x.conf:{f.line}: {f.severity}: ")


def test_crlf_line_endings_are_errors():
    f = found(GOOD.replace("\n", "\r\n"))
    assert (2, "error") in [(line, sev) for line, sev, msg in f if "carriage return" in msg]


def test_broad_key_without_a_victim_is_a_warning():
    text = GOOD.replace(
        "Setup a user = alice\n", "Setup a user = alice\nPublic ssh key = ssh-ed25519 AAAA k\n"
    )
    text = text.replace("Public ssh key for user alice = ssh-ed25519 AAAAC3Nza alice@laptop\n", "")
    f = found(text)
    hits = [(line, sev) for line, sev, msg in f if "matches several questions" in msg]
    assert hits == [(5, "warning")]
    assert not [x for x in f if x[1] == "error"]


def test_a_second_answer_to_a_question_asked_once():
    text = GOOD + "System hostname = other\n"
    assert (
        12,
        "warning",
        "never used: \"System hostname? (short form, e.g. 'foo')\" was answered by line 2 "
        "and is not asked again",
    ) in found(text)
