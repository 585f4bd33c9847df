"""render_install_conf / render_disklabel: only non-defaults, canonical keys, lints clean."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from packwrap.autoinstall.lint import lint
from packwrap.autoinstall.matching import parse
from packwrap.autoinstall.passwords import LOCKED, hash_password
from packwrap.autoinstall.release import load_release
from packwrap.autoinstall.render import answers_context, render_disklabel, render_install_conf
from packwrap.autoinstall.simulate import simulate
from packwrap.errors import PackwrapError

HASH = hash_password("s3cret-root")
USER_HASH = hash_password("s3cret-user")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZpcnR1YWwga2V5IGZvciB0ZXN0cw== me@host"


def render(**values):
    values.setdefault("root_password_hash", HASH)
    return render_install_conf(values, values.pop("release", "7.6"))


def test_minimal_file_is_what_an_unattended_cd_install_needs():
    text = render(hostname="web1")
    assert text == (
        "System hostname = web1\n"
        "IPv6 address for = none\n"  # explicit: the default is autoconf from 8.0
        "Default IPv4 route = none\n"  # asked when DHCP sends no router (QEMU restrict=on)
        f"Password for root account = {HASH}\n"
        "What timezone are you in = UTC\n"
        "Location of sets = cd0\n"
        "Directory does not contain SHA256.sig. Continue without verification = yes\n"
    )
    assert lint(text, "7.6") == []
    assert lint(text, "7.6", answers_context={"dhcp_router": False}) == []
    # the same file means the same on every release: no answer is left to a drifting default
    for release in ("7.5", "7.9", "8.0"):
        assert lint(text, release) == []
        assert text == render(hostname="web1", release=release)


def test_user_site_set_and_disklabel_render_in_installer_order():
    text = render(
        hostname="web1",
        root_ssh_key=KEY,
        user_name="alice",
        user_fullname="Alice Example",
        user_password_hash=USER_HASH,
        user_ssh_key=KEY,
        sshd=True,
        root_ssh_login="prohibit-password",
        sets="-game* -x*",
        site_set=True,
        disklabel_layout=[{"mount": "/", "size": "1G-*"}],
        disk_partitioning="whole-gpt",
    )
    lines = text.splitlines()
    assert lines == [
        "System hostname = web1",
        "IPv6 address for = none",
        "Default IPv4 route = none",
        f"Password for root account = {HASH}",
        f"Public ssh key for root account = {KEY}",
        "Setup a user = alice",
        "Full name for user alice = Alice Example",
        f"Password for user alice = {USER_HASH}",
        f"Public ssh key for user alice = {KEY}",
        "Allow root ssh login = prohibit-password",
        "What timezone are you in = UTC",
        "Use (W)hole disk MBR, whole disk (G)PT or (E)dit = gpt",
        "An EFI/GPT disk may not boot. Proceed = yes",
        "URL to autopartitioning template for disklabel = "
        "http://{{ .HTTPIP }}:{{ .HTTPPort }}/disklabel",
        "Location of sets = cd0",
        "Set name(s) = -game* -x*",
        "Set name(s) = done",
        "Directory does not contain SHA256.sig. Continue without verification = yes",
        "Location of sets = http",
        "HTTP Server = http://{{ .HTTPIP }}:{{ .HTTPPort }}",
        "Server directory = site",
        "INSTALL.amd64 not found. Use sets found here anyway = yes",
        "Set name(s) = site*",
        "Directory does not contain SHA256.sig. Continue without verification = yes",
    ]
    assert lint(text, "7.6") == []
    result = simulate(load_release("7.6"), parse(text), answers_context({"site_set": True}))
    assert not result.aborted
    assert result.set_rounds[1]["installed"] == [
        "bsd",
        "bsd.rd",
        "base76.tgz",
        "comp76.tgz",
        "man76.tgz",
    ]
    assert result.set_rounds[2]["installed"] == ["site76.tgz"]


@pytest.mark.parametrize("efi", [False, True])
def test_encrypted_gpt_answers_the_disk_question_for_the_chunk_and_the_volume(efi):
    """install.sub encrypt_root asks the disk question for sd0, configure_disk again for
    the softraid volume sd1: both get GPT, not the volume the default MBR."""
    text = render(hostname="crypt", encrypt_passphrase="correct horse",
                  disk_partitioning="whole-gpt")  # fmt: skip
    lines = text.splitlines()
    assert lines.count("Use (W)hole disk MBR, whole disk (G)PT or (E)dit = gpt") == 2
    assert lines.count("An EFI/GPT disk may not boot. Proceed = yes") == 2
    context = replace(answers_context({"encrypt_passphrase": "x"}), efi=efi)
    result = simulate(load_release("7.6"), parse(text), context)
    assert not result.aborted and not result.findings
    disk_answers = [(a, ln) for pid, _, a, ln, _ in result.asked if pid == "disk_partitioning"]
    assert [a for a, _ in disk_answers] == ["gpt", "gpt"]
    assert all(ln is not None for _, ln in disk_answers)  # from the file, not the default
    proceeds = [pid for pid, *_ in result.asked if pid == "gpt_proceed"]
    assert proceeds == ([] if efi else ["gpt_proceed", "gpt_proceed"])


def test_unencrypted_gpt_answers_once():
    text = render(hostname="plain", disk_partitioning="whole-gpt")
    assert text.count("Use (W)hole disk MBR, whole disk (G)PT or (E)dit = gpt") == 1


def test_http_base_with_a_path_and_per_host_site_set():
    text = render_install_conf(
        {"root_password_hash": LOCKED, "site_set": True, "site_set_per_host": True},
        "7.7",
        http_base="http://10.0.2.100:80/build1/",
    )
    assert "HTTP Server = http://10.0.2.100:80\n" in text
    assert "Server directory = build1/site\n" in text
    assert "Set name(s)" not in text  # the host's set is pre-selected
    values = {"site_set": True, "site_set_per_host": True}
    context = replace(answers_context(values, "7.7"), docroot_servers=("10.0.2.100:80",))
    result = simulate(load_release("7.7"), parse(text), context)
    assert result.set_rounds[2]["installed"] == ["site77-openbsd.tgz"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"root_password_hash": "hunter2"}, "bcrypt"),
        ({"root_password_hash": ""}, "required"),
        ({"user_password_hash": HASH}, "needs user_name"),
        ({"user_name": "root"}, "usable login"),
        ({"user_name": "no"}, "reads as an answer"),
        ({"timezone": "Europe"}, "full timezone"),
        ({"ipv4": "192.0.2.10"}, "ipv4_route"),
        ({"ipv4": "300.1.1.1"}, "ipv4"),
        ({"dns_domain": "example.com"}, "DHCP"),
        ({"dns_nameservers": ["192.0.2.353"]}, "not IP addresses"),
        ({"http_proxy": "http://p:3128"}, "sets_location = http"),
        ({"sets": "-base*"}, "base76.tgz"),
        ({"sets": "-nosuchset*"}, "matches none"),
        ({"root_ssh_login": "yes", "sshd": False}, "sshd"),
        ({"site_set_per_host": True}, "site_set"),
        ({"ipv4": "none", "site_set": True}, "network"),
        ({"disklabel_layout": [{"mount": "/usr", "size": "1G"}]}, "no '/'"),
    ],
)
def test_inconsistent_variables_are_refused(values, message):
    with pytest.raises(PackwrapError, match=message):
        render(**values)


def test_render_disklabel_syntax_and_errors():
    layout = [
        {"mount": "swap", "size": "256m"},
        {"mount": "/", "size": "2G-*", "percent": 60},
        {"mount": "/home", "size": "1g-10G", "percent": 40},
    ]
    assert render_disklabel(layout) == "swap 256M\n/ 2G-* 60%\n/home 1G-10G 40%\n"
    assert render_disklabel([{"mount": "/", "size": "*"}]) == "/ *\n"
    for bad, message in [
        ([{"mount": "/", "size": "*"}, {"mount": "/var", "size": "1G"}], "only on the last"),
        ([{"mount": "/", "size": "10G-1G"}], "minimum above"),
        ([{"mount": "/", "size": "1Q"}], "unit"),
        ([{"mount": "/", "size": "1G", "percent": 101}], "0..100"),
        (
            [
                {"mount": "/", "size": "1G", "percent": 70},
                {"mount": "/v", "size": "*", "percent": 40},
            ],
            "110%",
        ),
        ([{"mount": "/", "size": "1G"}, {"mount": "/", "size": "1G"}], "twice"),
        ([{"mount": "tmp", "size": "1G"}], "absolute"),
        ([], "empty"),
    ]:
        with pytest.raises(PackwrapError, match=message):
            render_disklabel(bad)


# -- every valid combination renders a file that lints clean ------------------------------

_NOT_LOGINS = ("root", "daemon", "operator", "bin", "build", "sshd", "www", "nobody", "ftp")
_LOGIN = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True).filter(
    lambda s: s not in (*_NOT_LOGINS, "n", "no", "y", "yes")
)


@st.composite
def combinations(draw):
    release = draw(st.sampled_from(["7.5", "7.6", "7.7", "7.8", "7.9", "8.0"]))
    v = {
        "hostname": draw(st.from_regex(r"[a-z][a-z0-9-]{0,14}", fullmatch=True)),
        "root_password_hash": draw(st.sampled_from([HASH, LOCKED])),
        "root_ssh_key": draw(st.sampled_from(["", KEY])),
        "timezone": draw(st.sampled_from(["UTC", "Europe/Berlin", "America/Argentina/Salta"])),
        "sshd": draw(st.booleans()),
        "com0_console": draw(st.booleans()),
        "com0_speed": draw(st.sampled_from([9600, 19200, 38400, 57600, 115200])),
        "x_window_system": draw(st.booleans()),
        "xenodm": draw(st.booleans()),
        "network_interface": draw(st.sampled_from(["", "vio0", "em0"])),
        "ipv4": draw(st.sampled_from(["autoconf", "none", "192.0.2.10", "192.0.2.10/24"])),
        "ipv6": draw(st.sampled_from(["none", "autoconf", "2001:db8::10", "2001:db8::10/64"])),
        "root_disk": draw(st.sampled_from(["", "sd0", "wd0"])),
        "disk_partitioning": draw(st.sampled_from(["", "whole-mbr", "whole-gpt"])),
        "sets_location": draw(st.sampled_from(["cd0", "http", "disk"])),
        "sets": draw(st.sampled_from(["", "-game*", "-game* -x*", "-x* +xbase*", "-man* -comp*"])),
    }
    if v["sshd"]:
        v["root_ssh_login"] = draw(st.sampled_from(["yes", "no", "prohibit-password"]))
    if draw(st.booleans()):
        v["user_name"] = draw(_LOGIN)
        v["user_fullname"] = draw(st.sampled_from(["", "Alice Example", v["user_name"]]))
        v["user_password_hash"] = draw(st.sampled_from(["", USER_HASH, LOCKED]))
        v["user_ssh_key"] = draw(st.sampled_from(["", KEY]))
    static4 = v["ipv4"] not in ("autoconf", "none")
    if static4:
        v["ipv4_netmask"] = draw(st.sampled_from(["255.255.255.0", "255.255.0.0"]))
        v["ipv4_route"] = draw(st.sampled_from(["192.0.2.1", "none"]))
    if v["ipv6"] not in ("autoconf", "none"):
        v["ipv6_route"] = draw(st.sampled_from(["none", "2001:db8::1"]))
    if v["ipv4"] != "autoconf":
        v["dns_domain"] = draw(st.sampled_from(["", "example.com"]))
    v["dns_nameservers"] = draw(
        st.sampled_from([[], ["192.0.2.53"], ["192.0.2.53", "2001:db8::53"]])
    )
    networked = v["ipv4"] != "none" or v["ipv6"] != "none"
    if not networked and v["sets_location"] == "http":
        v["sets_location"] = "cd0"
    if networked:
        v["disklabel_layout"] = draw(
            st.sampled_from(
                [
                    [],
                    [{"mount": "/", "size": "*"}],
                    [{"mount": "swap", "size": "256M"}, {"mount": "/", "size": "1G-*"}],
                ]
            )
        )
        v["site_set"] = draw(st.booleans())
        v["site_set_per_host"] = v["site_set"] and draw(st.booleans())
    # every known release encrypts unattended (7.5: install.sub 1.1259)
    v["encrypt_passphrase"] = draw(st.sampled_from(["", "correct horse battery"]))
    if v["sets_location"] == "http":
        v["sets_http_server"] = draw(
            st.sampled_from(["cdn.openbsd.org", "http://mirror.example:8080"])
        )
        v["sets_http_directory"] = draw(st.sampled_from(["", f"pub/OpenBSD/{release}/amd64"]))
        v["http_proxy"] = draw(st.sampled_from(["", "http://proxy.example:3128"]))
    elif v["sets_location"] == "disk":
        v["sets_disk"] = draw(st.sampled_from(["", "sd1"]))
        v["sets_path"] = draw(st.sampled_from(["", f"{release}/amd64"]))
    else:
        v["sets_path"] = draw(st.sampled_from(["", f"{release}/amd64"]))
    return release, v


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(combinations())
def test_every_rendered_file_lints_clean(combo):
    release, values = combo
    text = render_install_conf(values, release)
    rel = load_release(release)
    for context in (
        answers_context(values, release),  # a DHCP server that sends a router (vmd)
        # QEMU restrict=on: no router, no DNS server in the DHCP offer
        replace(answers_context(values, release), dhcp_router=False, dhcp_dns=False),
    ):
        assert lint(text, release, answers_context=context) == []
    result = simulate(rel, parse(text), context)
    assert not result.aborted
    installed = [s for r in result.set_rounds.values() for s in r.get("installed", [])]
    assert set(rel.required_sets()) <= set(installed)
    if values.get("site_set"):
        host = values["hostname"] if values.get("site_set_per_host") else None
        assert rel.site_set(host) in installed
    # Every line was consumed by a question, except machine-dependent ones.
    unused = {e.line for e in parse(text)} - set(result.consumed)
    for line in unused:
        key = text.splitlines()[line - 1]
        assert key.startswith(
            ("Do you", "An EFI/GPT", "Change the default console", "DNS nameservers")
        ), key
    with_router = simulate(rel, parse(text), answers_context(values, release))
    assert not with_router.aborted
    for line in text.splitlines():
        if line.startswith(("Password for root account", "Password for user")):
            value = line.split(" = ", 1)[1]
            assert value == LOCKED or value.startswith("$2b$10$")


def test_timezones_checked_against_the_tz_database():
    for tz in ("America/Argentina", "Mars/Olympus_Mons", "Europe"):
        with pytest.raises(PackwrapError, match="timezone"):
            render(timezone=tz)
    assert "What timezone are you in = Asia/Tokyo\n" in render(timezone="Asia/Tokyo")
