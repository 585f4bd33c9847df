"""The vmctl stand-in (scripts/vmctl-qemu) without booting a VM: vmctl 7.6's syntax,
usage messages and exit codes, `create`, the `status` table (vm.conf VMs that stay
listed), the forwarded port range, and the DHCP answer it patches. Expected texts come
from vmctl(8)/main.c, not from the stand-in."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

STANDIN = Path(__file__).resolve().parents[2] / "scripts" / "vmctl-qemu"
FMT = "%5s %5s %5s %7s %7s %7s %12s %8s %s"
CREATE_USAGE = "usage:\tvmctl [-v] create [-b base | -i disk] [-s size] disk\n"
START_USAGE = (
    "usage:\tvmctl [-v] start [-cL] [-B device] [-b path] [-d disk] [-i count]\n"
    "\t\t[-m size] [-n switch] [-r path] [-t name] id | name\n"
)


def vmctl(state: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "VMCTL_QEMU_STATE": str(state)}
    return subprocess.run(
        [sys.executable, str(STANDIN / "vmctl"), *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=60, check=False,
    )  # fmt: skip


def load(name: str):
    sys.path.insert(0, str(STANDIN))
    try:
        loader = importlib.machinery.SourceFileLoader(name, str(STANDIN / name))
        spec = importlib.util.spec_from_loader(name, loader)
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(STANDIN))


@pytest.mark.parametrize(
    "args,stderr",
    [
        ([], "usage:\tvmctl [-v] command [arg ...]\n"),
        (["st"], "ambiguous argument: st\nusage:\tvmctl [-v] command [arg ...]\n"),
        (["frobnicate"], "unknown argument: frobnicate\nusage:\tvmctl [-v] command [arg ...]\n"),
        (["start", "myvm", "-m", "1G"], START_USAGE),  # no permutation: flags before the name
        (["start", "-x", "myvm"], "vmctl: unknown option -- x\n" + START_USAGE),
        (["start", "-m"], "vmctl: option requires an argument -- m\n" + START_USAGE),
        (["start", "-B", "floppy", "x"], "vmctl: unknown boot device floppy\n"),
        (["start", "-m", "1G", "-m", "2G", "x"], "vmctl: memory specified multiple times\n"),
        (["start", "-m", "512K", "x"], "vmctl: memory size must be at least 1MB\n"),
        (["start", "-d", "/nonexistent.img", "x"],
         "vmctl: invalid disk path: /nonexistent.img: No such file or directory\n"),
        (["stop"], "usage:\tvmctl [-v] stop [-fw] [id | -a]\n"),
        (["stop", "-a", "x"], "usage:\tvmctl [-v] stop [-fw] [id | -a]\n"),
        (["status", "a", "b"], "usage:\tvmctl [-v] status [-r] [id]\n"),
        (["wait"], "usage:\tvmctl [-v] wait id\n"),
        (["create", "d.img", "-s", "1G"], CREATE_USAGE),
        (["create", "d.img"], "could not create d.img: missing size argument\n" + CREATE_USAGE),
        (["create", "-b", "base.qcow2", "d.raw"], "vmctl: base images require qcow2 disk format\n"),
    ],
)  # fmt: skip
def test_rejects_what_vmctl_rejects(tmp_path, args, stderr):
    proc = vmctl(tmp_path / "st", *args, cwd=tmp_path)
    assert (proc.returncode, proc.stderr, proc.stdout) == (1, stderr, "")


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")
def test_create(tmp_path):
    st = tmp_path / "st"
    proc = vmctl(st, "create", "-s", "64M", f"raw:{tmp_path}/a.img")
    assert (proc.returncode, proc.stderr) == (0, "vmctl: raw imagefile created\n")
    assert (tmp_path / "a.img").stat().st_size == 64 << 20
    proc = vmctl(st, "create", "-s", "1G", str(tmp_path / "b.qcow2"))  # format from the name
    assert proc.stderr == "vmctl: qcow2 imagefile created\n"
    assert (tmp_path / "b.qcow2").read_bytes()[:4] == b"QFI\xfb"
    proc = vmctl(st, "create", "-b", str(tmp_path / "b.qcow2"), f"qcow2:{tmp_path}/c.qcow2")
    assert proc.returncode == 0, proc.stderr
    proc = vmctl(st, "create", "-s", "1500000K", f"raw:{tmp_path}/d.img")
    assert proc.stderr == "vmctl: disk size rounded to 1.4G\nvmctl: raw imagefile created\n"
    proc = vmctl(st, "create", "-s", "64M", f"raw:{tmp_path}/a.img")
    assert proc.returncode == 1
    assert proc.stderr == "vmctl: create imagefile operation failed: File exists\n"


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")
def test_create_i_flattens_a_backing_chain(tmp_path):
    """main.c ctl_convert reads the input through vmd's image code, which follows the qcow2
    base chain: the copy is standalone, of the input's size, the caller's, mode 0600."""
    st = tmp_path / "st"
    data = tmp_path / "data.raw"
    data.write_bytes(b"A" * 65536 + bytes((8 << 20) - 65536))
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(data),
                    str(base)], check=True)  # fmt: skip
    assert vmctl(st, "create", "-b", str(base), f"qcow2:{tmp_path}/ov").returncode == 0
    proc = vmctl(st, "create", "-i", str(tmp_path / "ov"), f"raw:{tmp_path}/flat.raw")
    assert (proc.returncode, proc.stderr) == (0, "vmctl: raw imagefile created\n")
    flat = tmp_path / "flat.raw"
    assert flat.read_bytes() == data.read_bytes()
    assert flat.stat().st_mode & 0o777 == 0o600
    proc = vmctl(st, "create", "-i", str(tmp_path / "ov"), f"qcow2:{tmp_path}/flat.qcow2")
    info = subprocess.run(["qemu-img", "info", "--output=json", str(tmp_path / "flat.qcow2")],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "backing-filename" not in info and '"virtual-size": 8388608' in info
    proc = vmctl(st, "create", "-i", str(tmp_path / "ov"), "-b", str(base), "x.qcow2")
    assert (proc.returncode, proc.stderr) == (1, "vmctl: conflicting -b and -i arguments\n")
    proc = vmctl(st, "create", "-i", str(tmp_path / "nothing"), f"raw:{tmp_path}/y.raw")
    assert (proc.returncode, proc.stderr) == (1, "vmctl: failed to open source image file\n")
    proc = vmctl(st, "create", "-i", str(tmp_path / "ov"), f"raw:{flat}")
    assert (proc.returncode, proc.stderr) == (1, "vmctl: failed to create destination image file\n")


def test_status_lists_vm_conf_vms_as_stopped(tmp_path):
    st = tmp_path / "st"
    st.mkdir()
    (st / "vm.conf").write_text(
        'vm "openbsd-builder" {\n  disable\n  disk /dev/null\n  memory 1G\n  boot device net\n'
        "  owner nobody\n  allow instance { boot, cdrom, disk, interface, memory }\n}\n"
        'vm "web" {\n memory 512M\n disk "/var/vm/web.qcow2"\n owner nobody:nogroup\n}\n'
    )
    proc = vmctl(st, "status")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        FMT % ("ID", "PID", "VCPUS", "MAXMEM", "CURMEM", "TTY", "OWNER", "STATE", "NAME"),
        FMT % (1, "-", 1, "1.0G", "-", "-", "nobody", "stopped", "openbsd-builder"),
        FMT % (2, "-", 1, "512M", "-", "-", "nobody:nogroup", "stopped", "web"),
    ]
    # a name keeps its id; `status NAME` filters; -r lists running VMs only (none: exit 1)
    assert vmctl(st, "status", "web").stdout.splitlines()[1].split()[0] == "2"
    running = vmctl(st, "status", "-r")
    assert running.returncode == 1 and running.stdout.splitlines()[1:] == []
    assert vmctl(st, "stop", "web").stderr == "stopping vm web: failed: Invalid argument\n"
    assert vmctl(st, "start", "-t", "nosuch", "-d", "/dev/null", "x").stderr == (
        "vmctl: invalid template\n"
    )


TEMPLATE = """\
vm "openbsd-builder" {{
        disable
        disk /dev/null
        memory 1G{owner}
        allow instance {{ {flags} }}
}}
"""


def as_user(state: Path, *args: str, user: str = "nobody", **env: str):
    """vmctl run by the simulated unprivileged user (VMCTL_QEMU_USER; tests run as root)."""
    full = {**os.environ, "VMCTL_QEMU_STATE": str(state), "VMCTL_QEMU_USER": user, **env}
    argv = [sys.executable, str(STANDIN / "vmctl"), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=full, timeout=60, check=False)


@pytest.fixture
def host(tmp_path):
    """A "vmd" whose vm.conf lets nobody use the socket; a disk image nobody owns."""
    if os.getuid() != 0:
        pytest.skip("simulating another user needs root")
    st = tmp_path / "st"
    st.mkdir()
    disk = tmp_path / "d.raw"
    disk.write_bytes(b"\0" * 4096)
    os.chown(disk, 65534, -1)
    iso = tmp_path / "install76.iso"
    iso.write_bytes(b"\0" * 2048)

    def conf(flags: str, extra: str = "socket owner nobody\n", owner: str = "") -> None:
        owner = f"\n        owner {owner}" if owner else ""
        (st / "vm.conf").write_text(extra + TEMPLATE.format(flags=flags, owner=owner))
        (st / "vm.conf.loaded").unlink(missing_ok=True)  # "vmd" (re)starts

    return st, disk, iso, conf


def start_err(proc) -> str:
    assert proc.returncode == 1, proc.stderr
    return proc.stderr.strip()


def test_instance_rules_of_vmd(host):
    """vmd.c vm_instance / vm_register, errno by errno, before any VM boots."""
    st, disk, iso, conf = host
    args = ["start", "-L", "-t", "openbsd-builder", "-m", "256M", "-B", "cdrom",
            "-r", str(iso), "-d", str(disk), "b1"]  # fmt: skip
    conf("boot, cdrom, disk, interface, memory")  # no owner: wheel members only
    assert start_err(as_user(st, *args)) == "vmctl: start vm command failed: File name too long"
    conf("boot, cdrom, disk, interface, owner nobody")  # -m needs `memory`
    assert start_err(as_user(st, *args)).endswith("Operation not permitted")
    conf("boot, disk, interface, memory, owner nobody")  # -r needs `cdrom`
    assert start_err(as_user(st, *args)).endswith("Operation not permitted")
    conf("cdrom, disk, interface, memory, owner nobody")  # -b needs `boot`
    kernel = as_user(st, *args[:-1], "-b", str(iso), "b1")
    assert start_err(kernel).endswith("Operation not permitted")
    conf("boot, cdrom, disk, interface, memory, owner nobody", owner="nobody:nogroup")
    assert start_err(as_user(st, *args)).endswith("Operation not permitted")  # group owner
    conf("boot, cdrom, disk, interface, memory, owner nobody")
    assert start_err(as_user(st, *args[:-1], "openbsd-builder")).endswith("Too many processes")
    os.chown(disk, 0, -1)  # not the user's disk (0600 root)
    disk.chmod(0o600)
    assert start_err(as_user(st, *args)).endswith("Operation not permitted")
    untemplated = as_user(st, "start", "-L", "-d", str(disk), "-B", "disk", "b2")
    assert start_err(untemplated).endswith("Operation not permitted")  # only root


def test_socket_and_config_refusals(host):
    st, disk, _, conf = host
    conf("disk, owner nobody", extra="")
    assert start_err(as_user(st, "status")) == (
        "vmctl: connect: /var/run/vmd.sock: Permission denied"  # root:wheel 0660
    )
    (st / "vm.conf").write_text('vm "openbsd-builder" {\n disable\n memory 1G\n}\n')
    assert vmctl(st, "reload").stderr == "vmctl: command failed\n"  # the old one stays
    assert vmctl(st, "status").returncode == 0
    assert 'vm "openbsd-builder" failed' in (st / "vmd.log").read_text()
    (st / "vm.conf.loaded").unlink()  # vmd restarted with the refused file: not running
    assert vmctl(st, "status").stderr == (
        "vmctl: connect: /var/run/vmd.sock: No such file or directory\n"
    )
    conf("disk, owner nobody")
    missing = as_user(st, "start", "-t", "openbsd-builder", "-B", "cdrom", "-d", str(disk),
                      "b3", VMCTL_QEMU_FIRMWARE=str(st / "vmm-bios"))  # fmt: skip
    assert start_err(missing) == "vmctl: vmm bios firmware file not found."


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")
def test_create_as_the_caller_and_qcow2_bases(host, tmp_path):
    st, *_ = host
    assert as_user(st, "create", "-s", "8M", f"raw:{tmp_path}/u.raw").returncode == 0
    made = (tmp_path / "u.raw").stat()
    assert (made.st_uid, made.st_mode & 0o777) == (65534, 0o600)
    assert vmctl(st, "create", "-s", "8M", f"raw:{tmp_path}/r.raw").returncode == 0
    assert (tmp_path / "r.raw").stat().st_uid == 0
    bad = vmctl(st, "create", "-b", str(tmp_path / "r.raw"), f"qcow2:{tmp_path}/c.qcow2")
    assert bad.stderr == "vmctl: create imagefile operation failed: Invalid argument\n"


def test_stand_in_doas_applies_doas_conf(tmp_path):
    if os.getuid() != 0:
        pytest.skip("simulating another user needs root")
    doas = STANDIN / "doas-standin" / "doas"
    rules = tmp_path / "doas.conf"
    log = tmp_path / "doas.log"
    env = {**os.environ, "VMCTL_QEMU_DOAS_CONF": str(rules), "VMCTL_QEMU_USER": "nobody",
           "VMCTL_QEMU_DOAS_LOG": str(log)}  # fmt: skip

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(doas), *argv], capture_output=True,
                              text=True, env=env, check=False)  # fmt: skip

    rules.write_text("permit nopass nobody as root cmd /usr/bin/env\n")
    ok = run("-n", "/usr/bin/env")
    assert ok.returncode == 0 and "DOAS_USER=nobody" in ok.stdout
    assert "VMCTL_QEMU_USER" not in ok.stdout  # runs as root
    assert run("-n", "env").stderr == "doas: Operation not permitted\n"  # as typed
    assert run("-n", "/usr/bin/true").stderr == "doas: Operation not permitted\n"
    rules.write_text("permit nobody as root cmd /usr/bin/env\n")
    assert run("-n", "/usr/bin/env").stderr == "doas: Authentication required\n"
    assert log.read_text() == "/usr/bin/env\n"


def test_dhcp_next_server_is_the_tap_address():
    dhcp = load("vmctlq_dhcp.py")
    tap = socket.inet_aton("100.64.1.2")
    out = dhcp.patch_dhcp(dhcp_frame(b"\x35\x01\x05"), tap, tap, tap)
    assert out[14 + 20 + 8 + 20 : 14 + 20 + 8 + 24] == tap
    assert dhcp.patch_dhcp(out, tap, tap, tap) == out


def test_unknown_vm(tmp_path):
    st = tmp_path / "st"
    empty = vmctl(st, "status")
    assert (empty.returncode, empty.stdout.split()) == (1, ["ID", "PID", "VCPUS", "MAXMEM",
                                                             "CURMEM", "TTY", "OWNER", "STATE",
                                                             "NAME"])  # fmt: skip
    assert vmctl(st, "stop", "-f", "-w", "ghost").stderr == "stopping vm ghost: vm not found\n"
    assert vmctl(st, "stop", "7").stderr == "stopping vm: vm not found\n"
    assert vmctl(st, "wait", "ghost").stderr == "waiting for vm ghost: vm not found\n"


def test_forwarded_ports_work_around_slirp_byte_swap_conflicts(monkeypatch):
    vmctl_mod = load("vmctl")
    monkeypatch.delenv("VMCTL_QEMU_FORWARD_PORTS", raising=False)
    ports, remap = vmctl_mod.forward_ports()
    assert len(ports) == 994 and ports[0] == 8000 and ports[-1] == 8999
    assert sorted(remap) == [8480, 8736, 8737, 8992, 8993, 8994]  # every port is served
    registered = ports + list(remap.values())
    assert len(set(registered)) == len(registered)
    for p in registered:  # no two registered ports are each other's byte swap
        assert ((p & 0xFF) << 8 | p >> 8) not in set(registered) - {p}
    monkeypatch.setenv("VMCTL_QEMU_FORWARD_PORTS", "8080,9000-9002")
    assert vmctl_mod.forward_ports() == ([8080, 9000, 9001, 9002], {})


def tcp_frame(src: str, sport: int, dst: str, dport: int) -> bytes:
    payload = b"GET / HTTP/1.0\r\n\r\n"
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x18, 512, 0, 0) + payload
    pseudo = s + d + struct.pack("!BBH", 0, 6, len(tcp))
    dhcp = load("vmctlq_dhcp.py")
    csum = dhcp._checksum(pseudo + tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, s, d)
    return b"\x52\x55\x0a\x00\x02\x02" + b"\xfe\xe1\xba\xd0\x00\x40" + b"\x08\x00" + ip + tcp


def tcp_checksum_ok(frame: bytes) -> bool:
    dhcp = load("vmctlq_dhcp.py")
    ip, tcp = frame[14:34], frame[34:]
    return dhcp._checksum(ip[12:20] + struct.pack("!BBH", 0, 6, len(tcp)) + tcp) == 0


def test_port_rewrite_keeps_tcp_checksums_valid():
    dhcp = load("vmctlq_dhcp.py")
    host = socket.inet_aton("100.64.1.2")
    out = dhcp.remap_port(tcp_frame("100.64.1.3", 40000, "100.64.1.2", 8994), host,
                          {8994: 60001}, inbound=True)  # fmt: skip
    assert struct.unpack("!H", out[36:38])[0] == 60001 and tcp_checksum_ok(out)
    back = dhcp.remap_port(tcp_frame("100.64.1.2", 60001, "100.64.1.3", 40000), host,
                           {60001: 8994}, inbound=False)  # fmt: skip
    assert struct.unpack("!H", back[34:36])[0] == 8994 and tcp_checksum_ok(back)
    other = tcp_frame("100.64.1.3", 40000, "100.64.1.2", 8123)
    assert dhcp.remap_port(other, host, {8994: 60001}, inbound=True) == other


def test_local_pair_matches_vmctl_8():
    vmctl_mod = load("vmctl")
    assert vmctl_mod.local_pair(1, 0) == ("100.64.1.0/24", "100.64.1.2", "100.64.1.3")
    assert vmctl_mod.local_pair(300, 0) == ("100.65.44.0/24", "100.65.44.2", "100.65.44.3")
    assert vmctl_mod.local_pair(5, 1)[1:] == ("100.64.5.4", "100.64.5.5")


def dhcp_frame(options: bytes) -> bytes:
    bootp = bytes([2, 1, 6, 0]) + b"\0" * 232 + b"\x63\x82\x53\x63" + options + b"\xff"
    udp = struct.pack("!HHHH", 67, 68, 8 + len(bootp), 0) + bootp
    src, dst = socket.inet_aton("100.64.1.1"), socket.inet_aton("100.64.1.3")
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst)
    return b"\xff" * 6 + b"\x52\x55\x0a\x00\x02\x02" + b"\x08\x00" + ip + udp


def test_dhcp_answer_gets_vmd_router_and_dns():
    dhcp = load("vmctlq_dhcp.py")
    router = socket.inet_aton("100.64.1.2")
    frame = dhcp_frame(b"\x35\x01\x05\x01\x04\xff\xff\xff\x00")  # ACK, netmask; no router/DNS
    out = dhcp.patch_dhcp(frame, router, router)
    ip = out[14:34]
    assert dhcp._checksum(ip) == 0  # header checksum valid
    total = struct.unpack("!H", ip[2:4])[0]
    assert total == len(out) - 14
    options = out[14 + 20 + 8 + 240 :]
    assert b"\x03\x04" + router in options and b"\x06\x04" + router in options
    assert options.endswith(b"\xff")
    assert dhcp.patch_dhcp(out, router, router) == out  # already has both: unchanged
    other = frame[:34] + struct.pack("!H", 53) + frame[36:]  # not from port 67
    assert dhcp.patch_dhcp(other, router, router) == other
