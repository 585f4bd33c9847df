"""End to end: the OpenBSD 7.6 bsd.rd stand-in, booted directly with QEMU.

No packwrap builder here: tests.fixture_support's small driver types the
boot command, so these tests check the fixture itself (prompts, install.sub's
matching rule, the installed tar, the ISO path, the installed system's sshd).
"""

from __future__ import annotations

import io
import re
import shutil
import tarfile
import time
from pathlib import Path

import bcrypt
import paramiko
import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.fixture_support import (
    GuestError,
    QemuGuest,
    autoinstall,
    create_disk,
    docroot,
    fixture_dir,
    free_port,
    read_installed_tar,
    require_qemu,
)

pytestmark = pytest.mark.e2e

ROOT_HASH = bcrypt.hashpw(b"not-the-password", bcrypt.gensalt(4)).decode()
USER_HASH = bcrypt.hashpw(b"puffy-password", bcrypt.gensalt(4)).decode()
TEMPLATE = "/ 200M-*\nswap 20M-64M 10%\n"


def keypair() -> tuple[paramiko.Ed25519Key, str]:
    k = Ed25519PrivateKey.generate()
    pem = k.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption())
    pub = k.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH).decode()
    return paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode())), pub


def tgz(files: dict[str, bytes], modes: dict[str, int] | None = None) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), (modes or {}).get(name, 0o644)
            tar.addfile(ti, io.BytesIO(data))
    return raw.getvalue()


def mirror_files(extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """The fixture's signed set directory, plus unsigned extra sets listed in
    index.txt (as a site set on a real mirror)."""
    base = fixture_dir() / "mirror"
    files = {str(p.relative_to(base)): p.read_bytes() for p in base.rglob("*") if p.is_file()}
    setdir = "pub/OpenBSD/7.6/amd64"
    for name, data in (extra or {}).items():
        files[f"{setdir}/{name}"] = data
        files[f"{setdir}/index.txt"] += (
            f"-rw-r--r--  1 1001  0  {len(data):>10} Oct 08 00:00 {name}\n".encode()
        )
    return files


def prompts_in_order(text: str, prompts: list[str]) -> None:
    pos = 0
    for p in prompts:
        i = text.find(p, pos)
        assert i >= 0, f"prompt {p!r} missing (or out of order) after offset {pos}"
        pos = i + len(p)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """One full autoinstall over http (kernel boot, qcow2 disk) with a user,
    ssh keys, a disklabel template and both site sets with install.site."""
    require_qemu()
    work = tmp_path_factory.mktemp("install")
    root_key, root_pub = keypair()
    _, user_pub = keypair()
    site = tgz(
        {
            "install.site": b"#!/bin/sh\necho install.site ran >/etc/site-ran\nrm /install.site\n",
            "etc/site-generic": b"generic site set\n",
        },
        {"install.site": 0o755},
    )
    site_host = tgz({"etc/site-host": b"host site set\n"})
    conf = f"""\
System hostname = fxhost
Password for root account = {ROOT_HASH}
Public ssh key for root account = {root_pub} root@test
Default IPv4 route = none
Setup a user = puffy
Full name for user puffy = Puffy Fish
Password for user puffy = {USER_HASH}
Public ssh key for user puffy = {user_pub} puffy@test
Allow root ssh login = prohibit-password
What timezone are you in = Europe/Paris
URL to autopartitioning template for disklabel = http://10.0.2.100/template
Location of sets = http
HTTP Server = 10.0.2.100
Set name(s) = -x* -game* +site*
Checksum test for site76.tgz failed. Continue anyway = yes
Checksum test for site76-fxhost.tgz failed. Continue anyway = yes
Continue without verification = yes
"""
    files = mirror_files({"site76.tgz": site, "site76-fxhost.tgz": site_host})
    files.update({"install.conf": conf, "template": TEMPLATE})
    disk = create_disk(work / "disk.qcow2", "1G", "qcow2")
    with (
        docroot(files) as (_, srv),
        QemuGuest(work, disk, disk_format="qcow2", kernel=True, http_port=srv.port) as g,
    ):
        autoinstall(g)
        g.expect(r"CONGRATULATIONS! Your OpenBSD install has been successfully completed!", 60)
        rc = g.wait_exit(30)
        elapsed = g.t_exit - g.t_cont
        console, reasons, requests = g.text(), g.shutdown_reasons(), list(srv.requests)
    return {
        "disk": disk,
        "rc": rc,
        "reasons": reasons,
        "console": console,
        "elapsed": elapsed,
        "requests": requests,
        "root_key": root_key,
        "root_pub": root_pub,
        "user_pub": user_pub,
        "tree": read_installed_tar(disk, "qcow2"),
    }


def test_autoinstall_writes_the_installed_system(installed):
    assert installed["rc"] == 0 and installed["reasons"] == ["guest-reset"]  # exec reboot
    assert installed["elapsed"] < 45, installed["elapsed"]
    t, console = installed["tree"], installed["console"]
    assert t["etc/myname"] == b"fxhost.my.domain\n"
    passwd = t["etc/master.passwd"].decode().splitlines()
    assert passwd[0] == f"root:{ROOT_HASH}:0:0:daemon:0:0:Charlie &:/root:/bin/ksh"
    assert f"puffy:{USER_HASH}:1000:1000:staff:0:0:Puffy Fish:/home/puffy:/bin/ksh" in passwd
    assert t["root/.ssh/authorized_keys"].decode().startswith(installed["root_pub"])
    assert t["home/puffy/.ssh/authorized_keys"].decode().startswith(installed["user_pub"])
    assert t["etc/boot.conf"] == b"stty com0 115200\nset tty com0\n"
    assert t["etc/installurl"] == b"http://10.0.2.100/pub/OpenBSD\n"
    assert t["etc/disklabel.template"].decode() == TEMPLATE
    sets = t["var/db/installed.SETS"].decode().split()
    assert sets == [
        "bsd",
        "bsd.rd",
        "base76.tgz",
        "comp76.tgz",
        "man76.tgz",
        "site76.tgz",
        "site76-fxhost.tgz",
        "BUILDINFO",
    ]
    # Site sets extracted last; install.site ran chrooted and removed itself.
    assert t["etc/site-generic"] == b"generic site set\n"
    assert t["etc/site-host"] == b"host site set\n"
    assert t["etc/site-ran"] == b"install.site ran\n" and "install.site" not in t
    # Nothing of the fixture's runtime leaks into the tree; no secrets in the log.
    assert not {"bin", "lib", "lib64", "proc", "etc/shadow"} & t.keys()
    marker = t["etc/packwrap-fixture"].decode()
    assert "Which disk is the root disk = sd0" in marker
    assert ROOT_HASH not in marker and "Password for root" not in marker
    assert "GET /pub/OpenBSD/7.6/amd64/site76-fxhost.tgz" in " ".join(installed["requests"])
    # The questions, in order, with their defaults, as the console shows them.
    prompts_in_order(
        console,
        [
            "Welcome to the OpenBSD/amd64 7.6 installation program.",
            "(I)nstall, (U)pgrade, (A)utoinstall or (S)hell? A",
            "Response file location? [http://10.0.2.2/install.conf] http://10.0.2.100/install.conf",
            "Performing non-interactive install...",
            "Terminal type? [vt220] vt220",
            "System hostname? (short form, e.g. 'foo') fxhost",
            "Network interface to configure? (name, lladdr, '?', or 'done') [vio0] vio0",
            "IPv4 address for vio0? (or 'autoconf' or 'none') [autoconf] autoconf",
            "IPv6 address for vio0? (or 'autoconf' or 'none') [none] none",
            "Network interface to configure? (name, lladdr, '?', or 'done') [done] done",
            "Default IPv4 route? (IPv4 address or 'none') none",
            "DNS nameservers? (IP address list or 'none') [none] none",
            "Password for root account? <provided>",
            "Public ssh key for root account? [none] ssh-ed25519 ",
            "Start sshd(8) by default? [yes] yes",
            "Change the default console to com0? [yes] yes",
            "Which speed should com0 use? (or 'done') [115200] 115200",
            "Setup a user? (enter a lower-case loginname, or 'no') [no] puffy",
            "Full name for user puffy? [puffy] Puffy Fish",
            "Password for user puffy? <provided>",
            "Public ssh key for user puffy [none] ssh-ed25519 ",
            "Allow root ssh login? (yes, no, prohibit-password) [no] prohibit-password",
            "Which disk is the root disk? ('?' for details) [sd0] sd0",
            "Encrypt the root disk with a (p)assphrase or (k)eydisk? [no] no",
            "Use (W)hole disk MBR, whole disk (G)PT or (E)dit? [whole] whole",
            "URL to autopartitioning template for disklabel? [none] http://10.0.2.100/template",
            "Location of sets? (disk http nfs or 'done') [http] http",
            "HTTP proxy URL? (e.g. 'http://proxy:8080', or 'none') [none] none",
            "HTTP Server? (hostname or 'done') 10.0.2.100",
            "Server directory? [pub/OpenBSD/7.6/amd64] pub/OpenBSD/7.6/amd64",
            "Set name(s)? (or 'abort' or 'done') [done] -x* -game* +site*",
            "Set name(s)? (or 'abort' or 'done') [done] done",
            "Checksum test for site76.tgz failed. Continue anyway? [no] yes",
            "Checksum test for site76-fxhost.tgz failed. Continue anyway? [no] yes",
            "Unverified sets: site76.tgz site76-fxhost.tgz."
            " Continue without verification? [no] yes",
            "Location of sets? (disk http nfs or 'done') [done] done",
            "What timezone are you in? ('?' for list) [Canada/Mountain] Europe/Paris",
            "CONGRATULATIONS! Your OpenBSD install has been successfully completed!",
        ],
    )
    assert ROOT_HASH not in console and USER_HASH not in console


def test_missing_root_password_aborts_like_autoinstall(tmp_path):
    require_qemu()
    conf = "System hostname = nopw\nDefault IPv4 route = none\n"
    disk = create_disk(tmp_path / "disk.raw", "1G")
    with (
        docroot({"install.conf": conf}) as (_, srv),
        QemuGuest(tmp_path, disk, kernel=True, http_port=srv.port) as g,
    ):
        autoinstall(g)
        m = g.expect(r'Question has no answer in response file: "password for root account\?"', 60)
        g.expect(
            r"failed; check /tmp/ai/ai\.log\r?\n"
            r"\(I\)nstall, \(U\)pgrade, \(A\)utoinstall or \(S\)hell\? ",
            30,
            start=m.end(),
        )
        assert g.proc.poll() is None  # no reboot: the build would time out
    assert disk.read_bytes()[:512] == b"\0" * 512  # nothing was written


def write_mbr_with_openbsd_partition(disk: Path) -> None:
    """An MBR (signature 0x55AA) whose first entry is an OpenBSD partition (id A6)."""
    with disk.open("r+b") as f:
        f.seek(446)
        f.write(bytes([0x80, 0, 0, 0, 0xA6, 0, 0, 0]) + (64).to_bytes(4, "little")
                + (1 << 20).to_bytes(4, "little"))  # fmt: skip
        f.seek(510)
        f.write(b"\x55\xaa")


def test_matching_rule_whole_words_case_and_first_line_wins(tmp_path):
    """install.sub's _autorespond: a key that ends inside a word does not
    match; case is ignored; a broad key earlier in the file steals. The disk
    already has an OpenBSD MBR partition (install.md's (O)penBSD area form) and
    the file answers no timezone (the etc set's Canada/Mountain)."""
    require_qemu()
    _, stolen = keypair()
    _, meant_for_root = keypair()
    conf = f"""\
System hostname = rules
Password for root account = {ROOT_HASH}
# broad key first: it takes the root key question, whatever it was meant for
Public ssh key = {stolen} broad
Public ssh key for root account = {meant_for_root} narrow
Setup a user = puffy
Password for user = {USER_HASH}
Change the default console to com = no
WHICH SPEED SHOULD COM0 = 9600
Terminal typ = xterm
Default IPv4 route = none
Location of sets = http
HTTP Server = 10.0.2.100
Set name(s) = -x* -game* -comp* -man*
"""
    files = mirror_files()
    files["install.conf"] = conf
    disk = create_disk(tmp_path / "disk.raw", "1G")
    write_mbr_with_openbsd_partition(disk)
    with (
        docroot(files) as (_, srv),
        QemuGuest(tmp_path, disk, kernel=True, http_port=srv.port) as g,
    ):
        autoinstall(g)
        assert g.wait_exit(60) == 0
        console = g.text()
    t = read_installed_tar(disk)
    area = "Use (W)hole disk MBR, whole disk (G)PT, (O)penBSD area or (E)dit? [OpenBSD] OpenBSD"
    assert area in console and "No valid MBR or GPT." not in console
    assert "What timezone are you in? ('?' for list) [Canada/Mountain] Canada/Mountain" in console
    marker = t["etc/packwrap-fixture"].decode()
    assert "partition_tables = sd0:MBR" in marker
    assert "What timezone are you in = Canada/Mountain" in marker
    assert t["root/.ssh/authorized_keys"].decode().startswith(stolen)
    assert "home/puffy/.ssh/authorized_keys" not in t  # its line was consumed by root
    assert "Terminal type? [vt220] vt220" in console  # 'typ' ends inside 'type'
    assert "Change the default console to com0? [yes] yes" in console  # 'com' inside 'com0'
    assert t["etc/boot.conf"] == b"stty com0 9600\nset tty com0\n"  # case-insensitive
    assert re.search(r"Public ssh key for user puffy \[none\] none", console)


def test_iso_boot_prompt_and_cd_sets(tmp_path):
    require_qemu()
    conf = f"""\
System hostname = isobox
Password for root account = {ROOT_HASH}
Default IPv4 route = none
Location of sets = cdrom
Location of sets = CD
Directory does not contain SHA256.sig. Continue without verification = yes
"""
    disk = create_disk(tmp_path / "disk.raw", "1G")
    iso = fixture_dir() / "install76.iso"
    with (
        docroot({"install.conf": conf}) as (_, srv),
        QemuGuest(tmp_path, disk, iso=str(iso), http_port=srv.port) as g,
    ):
        g.answer(r"boot> ", "set tty com0", 60)
        g.answer(r"boot> ", "boot")
        autoinstall(g)
        assert g.wait_exit(60) == 0 and g.shutdown_reasons() == ["guest-reset"]
        console = g.text()
    assert "boot> set tty com0\r\nswitching console to com0" in console  # echoed like a tty
    # install_sets: 'cdrom' names no CD device (nothing installed, the default becomes
    # 'done'); 'CD' is [cC]?([dD]), the first CD
    prompts_in_order(
        console,
        [
            "Location of sets? (cd0 disk http nfs or 'done') [cd0] cdrom",
            "Location of sets? (cd0 disk http nfs or 'done') [done] CD",
            "Pathname to the sets? (or 'done') [7.6/amd64] 7.6/amd64",
        ],
    )
    assert console.count("Pathname to the sets?") == 1
    t = read_installed_tar(disk)
    assert t["etc/myname"] == b"isobox.my.domain\n"
    assert "base76.tgz" in t["var/db/installed.SETS"].decode().split()
    assert "boot = cd0" in t["etc/packwrap-fixture"].decode()


def scp_upload(client: paramiko.SSHClient, path: str, data: bytes) -> None:
    """The legacy scp protocol, as Packer's file provisioner speaks it."""
    ch = client.get_transport().open_session()
    ch.exec_command(f"scp -t {path}")
    assert ch.recv(1) == b"\0"
    ch.sendall(b"C0644 %d %s\n" % (len(data), Path(path).name.encode()))
    assert ch.recv(1) == b"\0"
    ch.sendall(data + b"\0")
    assert ch.recv(1) == b"\0"
    ch.shutdown_write()  # EOF: scp exits; wait for it, as Packer's scp does
    assert ch.recv_exit_status() == 0
    ch.close()


def run(client: paramiko.SSHClient, cmd: str) -> tuple[int, str]:
    _, out, _ = client.exec_command(cmd)
    text = out.read().decode()
    return out.channel.recv_exit_status(), text


def connect(port: int, key: paramiko.PKey, timeout: float = 60) -> paramiko.SSHClient:
    end = time.monotonic() + timeout
    while True:
        c = paramiko.SSHClient()
        c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            c.connect(
                "127.0.0.1",
                port=port,
                username="root",
                pkey=key,
                timeout=10,
                allow_agent=False,
                look_for_keys=False,
                banner_timeout=10,
            )
            return c
        except (paramiko.SSHException, OSError):
            c.close()
            if time.monotonic() > end:
                raise
            time.sleep(0.5)


@pytest.mark.parametrize("stop", ["shutdown -p now", "halt -p", "poweroff"])
def test_installed_system_ssh_provisioning_survives_poweroff(installed, tmp_path, stop):
    disk = tmp_path / "disk.qcow2"
    shutil.copyfile(installed["disk"], disk)
    port = free_port()
    with QemuGuest(
        tmp_path,
        disk,
        disk_format="qcow2",
        kernel=True,
        append="pwfixture.mode=installed",
        ssh_port=port,
    ) as g:
        g.expect(r"login: ", 60)
        c = connect(port, installed["root_key"])
        try:
            host_key = c.get_transport().get_remote_server_key().get_base64()
            assert host_key in (fixture_dir() / "ssh_host_ed25519_key.pub").read_text()
            assert run(c, "cat /etc/myname; id -u") == (0, "fxhost.my.domain\n0\n")
            assert run(c, "mkdir -p /var/db && touch /var/db/packwrap-demo")[0] == 0
            assert run(c, "exit 3")[0] == 3
            scp_upload(c, "/etc/motd", b"provisioned motd\n")
            assert run(c, stop)[0] == 0
        finally:
            c.close()
        assert g.wait_exit(30) == 0
        assert g.shutdown_reasons() == ["guest-shutdown"]
    t = read_installed_tar(disk, "qcow2")
    assert "var/db/packwrap-demo" in t
    assert t["etc/motd"] == b"provisioned motd\n"
    assert t["etc/site-ran"] == b"install.site ran\n"  # the rest is kept
    assert not {"bin", "lib", "proc", "etc/shadow", "usr/lib/sftp-server"} & t.keys()


def test_installed_system_can_ignore_shutdown(installed, tmp_path):
    disk = tmp_path / "disk.qcow2"
    shutil.copyfile(installed["disk"], disk)
    port = free_port()
    with QemuGuest(
        tmp_path,
        disk,
        disk_format="qcow2",
        kernel=True,
        append="pwfixture.mode=installed pwfixture.ignore_shutdown=1",
        ssh_port=port,
    ) as g:
        g.expect(r"login: ", 60)
        c = connect(port, installed["root_key"])
        try:
            assert run(c, "shutdown -p now")[0] == 0
        finally:
            c.close()
        with pytest.raises(GuestError):
            g.wait_exit(3)


def test_netboot_starts_autoinstall_and_finds_the_hostname_response_file(tmp_path):
    """vmd -B net: autoinstall starts by itself; mode, host name and server
    come from the DHCP lease (slirp bootfile/hostname; next-server given as
    the guestfwd address since slirp's own is unreachable under restrict)."""
    require_qemu()
    conf = f"""\
Password for root account = {ROOT_HASH}
Default IPv4 route = none
Location of sets = http
HTTP Server = 10.0.2.100
Set name(s) = -x* -game* -comp* -man*
"""
    files = mirror_files()
    files["netvm-install.conf"] = conf
    disk = create_disk(tmp_path / "disk.raw", "1G")
    with (
        docroot(files) as (_, srv),
        QemuGuest(
            tmp_path,
            disk,
            kernel=True,
            http_port=srv.port,
            append="pwfixture.netboot=1 pwfixture.next_server=10.0.2.100",
            netdev_opts="bootfile=auto_install,hostname=netvm",
        ) as g,
    ):
        assert g.wait_exit(60) == 0  # nothing typed at all
        console, requests = g.text(), srv.requests
    assert "Starting non-interactive mode in 5 seconds..." in console
    assert "System hostname? (short form, e.g. 'foo') [netvm] netvm" in console
    assert "GET /netvm-install.conf?path=7.6/amd64 HTTP/1.1" in requests
    assert read_installed_tar(disk)["etc/myname"] == b"netvm.my.domain\n"
