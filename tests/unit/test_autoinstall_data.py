"""Release prompt data, matching rule, passwords and installer variables."""

from __future__ import annotations

import bcrypt
import pytest

from packwrap.autoinstall.matching import canonical_key, key_matches, parse
from packwrap.autoinstall.passwords import LOCKED, hash_password, is_bcrypt, is_installer_hash
from packwrap.autoinstall.release import known_releases, load_release
from packwrap.autoinstall.variables import installer_variables, resolve
from packwrap.errors import PackwrapError


def test_known_releases_and_unknown_one_lists_them():
    assert known_releases() == ["7.5", "7.6", "7.7", "7.8", "7.9", "8.0", "snapshots"]
    with pytest.raises(PackwrapError, match=r"known: 7\.5, 7\.6, 7\.7, 7\.8, 7\.9, 8\.0, snap"):
        load_release("6.9")


def test_76_prompts_in_order_with_exact_texts():
    rel = load_release("7.6")
    texts = [p.text for p in rel.prompts]
    order = [
        "System hostname? (short form, e.g. 'foo')",
        "Password for root account?",
        "Public ssh key for root account?",
        "Start sshd(8) by default?",
        "Setup a user? (enter a lower-case loginname, or 'no')",
        "Public ssh key for user {login}",
        "Which disk is the root disk? ('?' for details)",
        "Encrypt the root disk with a (p)assphrase or (k)eydisk?",
        "Use (W)hole disk MBR, whole disk (G)PT or (E)dit?",
        "URL to autopartitioning template for disklabel?",
        "Location of sets? ({locations} or 'done')",
        "Set name(s)? (or 'abort' or 'done')",
        "Directory does not contain SHA256.sig. Continue without verification?".replace(
            "Directory does not contain SHA256.sig", "{issue}"
        ),
    ]
    positions = [texts.index(t) for t in order]
    assert positions == sorted(positions)
    assert rel["root_password"].default in ("", None)  # mandatory
    assert rel["sshd"].kind == "yesno" and rel["sshd"].default == "yes"
    assert rel["root_ssh_key"].ai_only and rel["user_ssh_key"].ai_only
    assert rel["com0_speed"].choices[:5] == ("9600", "19200", "38400", "57600", "115200")
    assert rel["sets_path"].default == "7.6/amd64"
    assert rel["http_directory"].default == "pub/OpenBSD/7.6/amd64"
    assert not rel["start_mode"].answerable


def test_release_differences_live_in_data():
    r75, r76, r77 = load_release("7.5"), load_release("7.6"), load_release("7.7")
    # 7.5 (install.sub 1.1257/1.1259) already encrypts under autoinstall
    assert r75["encrypt_root"].text == "Encrypt the root disk with a (p)assphrase or (k)eydisk?"
    assert "new_passphrase" in r75 and r75.autoinstall_encryption
    assert "new_passphrase" in r76 and r76.autoinstall_encryption
    assert r77.site_set() == "site77.tgz" and r77["sets_path"].default == "7.7/amd64"
    assert r76.site_set("web1") == "site76-web1.tgz"
    assert r76.all_sets(ncpu=2)[:3] == ["bsd", "bsd.mp", "bsd.rd"]


def test_79_and_80_defaults_drift_but_texts_do_not():
    r76, r78, r79, r80 = (load_release(r) for r in ("7.6", "7.8", "7.9", "8.0"))
    assert [p.texts for p in r80.prompts] == [
        tuple(t.replace("7.6", "8.0").replace("76", "80") for t in p.texts) for p in r76.prompts
    ]
    assert r79.site_set() == "site79.tgz" and r80["sets_path"].default == "8.0/amd64"
    assert r76.sets_default_order == ("cd", "http")
    assert r78.sets_default_order == r79.sets_default_order == ("http", "cd")
    assert r79["ipv6_address"].default == "none" and r80["ipv6_address"].default == "autoconf"
    assert {r.etc_localtime for r in (r76, r79, r80)} == {"Canada/Mountain"}
    for rel in (r79, r80):
        assert "1.1292" in rel.source and "IABSD-fr/src@412459e7" in rel.source


@pytest.mark.parametrize(
    ("question", "key", "hit"),
    [
        ("Password for root account?", "Password for root", True),
        ("Password for root account?", "password FOR ROOT account?", True),
        ("Which disk is the root disk? ('?' for details)", "root disk", True),
        ("Which disk is the root disk? ('?' for details)", "root dis", False),
        ("Public ssh key for user alice", "Public ssh key for user alice", True),
        ("Use (W)hole disk MBR, whole disk (G)PT or (E)dit?", "Use (W)hole disk", True),
        (
            "Use (W)hole disk MBR, whole disk (G)PT, (O)penBSD area or (E)dit?",
            "Use (W)hole disk MBR, whole disk (G)PT",
            False,  # followed by ',' there
        ),
        ("Set name(s)? (or 'abort' or 'done')", "Set name(s)", True),
        ("Set name(s)? (or 'abort' or 'done')", "name(s)? (or", True),
        ("Start sshd(8) by default?", "sshd", False),
    ],
)
def test_matching_rule(question, key, hit):
    assert key_matches(question, key) is hit


def test_parse_follows_autorespond():
    text = (
        "# comment\n"
        "  System hostname =  foo  \n"
        "= starts with equals\n"
        "Empty answer =\n"
        "no equals sign\n"
        "Password for root account = $2b$10$x=y\n"
    )
    entries = parse(text)
    assert [(e.line, e.key, e.value) for e in entries] == [
        (2, "System hostname", "foo"),
        (6, "Password for root account", "$2b$10$x=y"),
    ]
    assert canonical_key("Which disk is the root disk? ('?' for details)") == (
        "Which disk is the root disk"
    )


def test_hash_password_is_bcrypt_the_installer_keeps():
    hashed = hash_password("correct horse")
    assert hashed.startswith("$2b$10$") and len(hashed) == 60
    assert bcrypt.checkpw(b"correct horse", hashed.encode())
    assert not bcrypt.checkpw(b"wrong", hashed.encode())
    assert is_installer_hash(hashed) and is_bcrypt(hashed)
    assert is_installer_hash(LOCKED) and not is_installer_hash("*" * 12)
    assert not is_installer_hash("hunter2")
    assert not is_bcrypt("$2b$04$" + "a" * 53)  # cost below 10
    with pytest.raises(PackwrapError):
        hash_password("")


def test_installer_variables_cover_the_answers():
    names = {v.name: v for v in installer_variables()}
    for required in [
        "hostname",
        "root_password_hash",
        "root_ssh_key",
        "user_name",
        "user_fullname",
        "user_password_hash",
        "user_ssh_key",
        "timezone",
        "sshd",
        "root_ssh_login",
        "com0_console",
        "com0_speed",
        "network_interface",
        "ipv4",
        "ipv4_netmask",
        "ipv4_route",
        "ipv6",
        "ipv6_route",
        "dns_domain",
        "dns_nameservers",
        "root_disk",
        "disk_partitioning",
        "disklabel_layout",
        "encrypt_passphrase",
        "sets_location",
        "sets_http_server",
        "sets_http_directory",
        "sets_path",
        "sets",
        "site_set",
        "site_set_per_host",
        "http_proxy",
        "x_window_system",
    ]:
        assert required in names, required
        assert names[required].help
    rel = load_release("7.6")
    assert all(v.question in rel for v in names.values())
    assert names["sshd"].type == "bool" and names["sshd"].default is True
    assert names["com0_speed"].type == "number" and names["com0_speed"].default == 115200
    assert names["ipv4"].default == "autoconf" and names["ipv6"].default == "none"
    assert names["encrypt_passphrase"].sensitive and names["root_password_hash"].sensitive
    assert names["disklabel_layout"].type.startswith("list(")


def test_resolve_coerces_and_checks_choices():
    v = resolve({"sshd": "false", "dns_nameservers": "192.0.2.1 192.0.2.2", "com0_speed": "9600"})
    assert v["sshd"] is False and v["com0_speed"] == 9600
    assert v["dns_nameservers"] == ["192.0.2.1", "192.0.2.2"]
    with pytest.raises(PackwrapError, match="sets_location"):
        resolve({"sets_location": "ftp"})
    with pytest.raises(PackwrapError, match="com0_speed"):
        resolve({"com0_speed": 12345})
