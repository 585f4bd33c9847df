"""The vmctl driver: every command line it can build, checked against vmctl(8)'s synopsis
(written out below as a small grammar, from vmctl(8) and vmctl's main.c, never from the
driver), `vmctl status` parsing, -L addresses, `ifconfig tap`, and error hints."""

from __future__ import annotations

import itertools
import subprocess

import pytest
from packwrap_vmm.driver import (
    Driver,
    VmctlError,
    explain,
    local_addresses,
    parse_ifconfig_tap,
    parse_started,
    parse_status,
)

from packwrap.config.size import Size, parse_size

# --- vmctl(8) 7.6 synopsis as a grammar -------------------------------------------------
# create [-b base | -i disk] [-s size] disk
# start [-cL] [-B device] [-b path] [-d disk] [-i count] [-m size] [-n switch] [-r path]
#       [-t name] id | name
# stop [-fw] [id | -a]
# status [-r] [id]
# wait id
SYNOPSIS = {
    "create": {"flags": "", "args": "bis", "operands": (1, 1)},
    "start": {"flags": "cL", "args": "Bbdimnrt", "operands": (1, 1)},
    "stop": {"flags": "fwa", "args": "", "operands": (0, 1)},
    "status": {"flags": "r", "args": "", "operands": (0, 1)},
    "wait": {"flags": "", "args": "", "operands": (1, 1)},
}
REPEATABLE = {"start": set("dLn")}


def bsd_getopt(argv: list[str], flags: str, args: str) -> tuple[list[tuple[str, str]], list[str]]:
    """OpenBSD getopt(3): options end at the first operand (no permutation) or `--`."""
    opts, i = [], 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        if argv[i] == "--":
            i += 1
            break
        word, j = argv[i], 1
        while j < len(word):
            c = word[j]
            if c in flags:
                opts.append((c, ""))
                j += 1
            elif c in args:
                value = word[j + 1 :] or (argv[i + 1] if i + 1 < len(argv) else None)
                if value is None:
                    raise ValueError(f"-{c} needs an argument")
                if not word[j + 1 :]:
                    i += 1
                opts.append((c, value))
                break
            else:
                raise ValueError(f"unknown option -{c}")
        i += 1
    return opts, argv[i:]


def check_synopsis(argv: list[str]) -> tuple[str, list[tuple[str, str]], list[str]]:
    """Raise ValueError unless argv (without the program) is valid vmctl 7.6 syntax."""
    cmd, rest = argv[0], argv[1:]
    spec = SYNOPSIS[cmd]
    opts, operands = bsd_getopt(rest, spec["flags"], spec["args"])
    lo, hi = spec["operands"]
    if cmd == "stop" and any(o == "a" for o, _ in opts):
        lo = hi = 0
    if not lo <= len(operands) <= hi:
        raise ValueError(f"{cmd}: {len(operands)} operands")
    seen = [o for o, _ in opts if o not in REPEATABLE.get(cmd, set())]
    if len(seen) != len(set(seen)):
        raise ValueError(f"{cmd}: an option given twice")
    if any(op.startswith("-") for op in operands):
        raise ValueError(f"{cmd}: an option after the operands")
    if cmd == "create":
        keys = {o for o, _ in opts}
        if {"b", "i"} <= keys:
            raise ValueError("create: -b and -i conflict")
        if not keys & {"s", "b", "i"}:
            raise ValueError("create: needs -s, -b or -i")
    if cmd == "start":
        for o, v in opts:
            if o == "B" and v not in ("cdrom", "disk", "net"):
                raise ValueError(f"unknown boot device {v}")
    return cmd, opts, operands


def test_grammar_rejects_what_vmctl_rejects():
    for bad in (
        ["start", "myvm", "-m", "1G"],  # pre-6.6 order: flags after the name
        ["start", "-B", "floppy", "-d", "d.img", "x"],
        ["create", "d.img", "-s", "1G"],
        ["create", "-b", "a.qcow2", "-i", "b.img", "c.qcow2"],
        ["stop", "-a", "myvm"],
        ["status", "a", "b"],
        ["start", "-m", "1G", "-m", "2G", "x"],
        ["start", "-x", "x"],
    ):
        with pytest.raises(ValueError):
            check_synopsis(bad)


# --- every command line the driver builds ------------------------------------------------


@pytest.mark.parametrize(
    "template,memory,boot_device,boot,cdrom,local",
    list(
        itertools.product(
            (None, "openbsd-builder"),
            (None, Size.of_mib(1024)),
            (None, "cdrom", "disk", "net"),
            (None, "/bsd.rd"),
            (None, "/iso/install76.iso"),
            (True, False),
        )
    ),
)
def test_start_command_lines_follow_the_synopsis(template, memory, boot_device, boot, cdrom, local):
    args = Driver.start_args(
        "myvm", disk="/out/myvm.raw", template=template, memory=memory,
        boot_device=boot_device, boot=boot, cdrom=cdrom, local=local,
    )  # fmt: skip
    cmd, opts, operands = check_synopsis(args)
    assert operands == ["myvm"]  # the name is the last word, every flag before it
    got = dict((o, v) for o, v in opts if o != "L")
    m = memory and f"{memory.mib}M"
    expected = {"d": "/out/myvm.raw", "t": template, "m": m, "B": boot_device,
                "b": boot, "r": cdrom}  # fmt: skip
    assert got == {k: v for k, v in expected.items() if v is not None}
    assert ("L", "") in opts if local else ("L", "") not in opts
    assert ("c", "") not in opts  # we open the pty ourselves (see step_start_vm)


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
@pytest.mark.parametrize(
    "size,base,arg",
    [("1500M", None, "1500M"), ("20G", None, "20480M"), (None, "/b/base.qcow2", "")],
)
def test_create_command_lines_follow_the_synopsis(fmt, size, base, arg):
    size = parse_size(size) if size else None
    args = Driver.create_args("/out/vm.img", fmt, size=size, base=base)
    cmd, opts, operands = check_synopsis(args)
    assert operands == [f"{fmt}:/out/vm.img"]
    assert dict(opts) == ({"b": base} if base else {"s": arg})


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_convert_command_line_follows_the_synopsis(fmt):
    args = Driver.convert_args("/out/.vm.ov", "/out/.vm.img.tmp", fmt)
    cmd, opts, operands = check_synopsis(args)
    assert (cmd, dict(opts), operands) == (
        "create",
        {"i": "/out/.vm.ov"},
        [f"{fmt}:/out/.vm.img.tmp"],
    )


def test_convert_runs_as_the_user_without_a_timeout_and_quotes_vmctl(mocker):
    run = mocker.Mock(
        return_value=subprocess.CompletedProcess(
            [], 1, "", "vmctl: failed to open source image file\n"
        )
    )
    drv = Driver("/usr/sbin/vmctl", doas=True, run=run, env={"PATH": "/nonexistent"})
    with pytest.raises(VmctlError) as failed:
        drv.convert("/o/.ov", "/o/.tmp", "raw")
    assert str(failed.value) == "vmctl create -i failed: vmctl: failed to open source image file"
    argv = run.call_args.args[0]
    assert argv == ["/usr/sbin/vmctl", "create", "-i", "/o/.ov", "raw:/o/.tmp"]
    assert run.call_args.kwargs["timeout"] is None


def test_create_needs_a_size_or_base():
    with pytest.raises(VmctlError):
        Driver.create_args("/out/vm.img", "raw")


@pytest.mark.parametrize("force,wait", list(itertools.product((False, True), (False, True))))
@pytest.mark.parametrize("target", ["myvm", "12"])
def test_stop_command_lines_follow_the_synopsis(force, wait, target):
    cmd, opts, operands = check_synopsis(Driver.stop_args(target, force=force, wait=wait))
    assert operands == [target]
    assert {o for o, _ in opts} == {o for o, on in (("f", force), ("w", wait)) if on}


def test_status_and_doas_prefix(mocker):
    run = mocker.Mock(return_value=subprocess.CompletedProcess([], 0, STATUS_76, ""))
    drv = Driver("/usr/sbin/vmctl", doas=True, run=run, env={"PATH": "/usr/bin"})
    drv.status("myvm")
    argv = run.call_args.args[0]
    assert argv[:3] == ["doas", "-n", "/usr/sbin/vmctl"]
    check_synopsis(argv[3:])
    drv = Driver("/usr/sbin/vmctl", run=run, env={"PATH": "/usr/bin"})
    drv.status()
    assert run.call_args.args[0] == ["/usr/sbin/vmctl", "status"]  # no doas unless asked


# --- vmctl status -----------------------------------------------------------------------

FMT = "%5s %5s %5s %7s %7s %7s %12s %8s %s"
HEADER = FMT % ("ID", "PID", "VCPUS", "MAXMEM", "CURMEM", "TTY", "OWNER", "STATE", "NAME")
STATUS_76 = (
    "\n".join(
        [
            HEADER,
            FMT % (1, "-", 1, "1.0G", "-", "-", "root", "stopped", "openbsd-builder"),
            FMT % (12, 72118, 1, "512M", "511M", "ttyp8", "alice", "running", "myvm"),
            FMT % (300, 8811, 1, "1.0G", "1015M", "pts/3", "bob:wheel", "stopping", "other.vm"),
        ]
    )
    + "\n"
)


def test_status_parsed_by_column():
    rows = {r.name: r for r in parse_status(STATUS_76)}
    assert set(rows) == {"openbsd-builder", "myvm", "other.vm"}
    stopped = rows["openbsd-builder"]
    assert (stopped.id, stopped.pid, stopped.tty, stopped.state) == (1, None, None, "stopped")
    assert not stopped.running  # a vm.conf VM stays listed after it stopped
    vm = rows["myvm"]
    assert (vm.id, vm.pid, vm.tty_path, vm.owner, vm.running) == (12, 72118, "/dev/ttyp8",
                                                                   "alice", True)  # fmt: skip
    assert rows["other.vm"].id == 300 and rows["other.vm"].tty_path == "/dev/pts/3"


def test_status_pre_7_without_state_column():
    fmt = "%5s %5s %5s %7s %7s %7s %12s %s"
    text = "\n".join(
        [
            fmt % ("ID", "PID", "VCPUS", "MAXMEM", "CURMEM", "TTY", "OWNER", "NAME"),
            fmt % (3, 4242, 1, "512M", "88.1M", "ttyp2", "root", "old"),
            fmt % (4, "-", 1, "1.0G", "-", "-", "root", "conf"),
        ]
    )
    rows = parse_status(text)
    assert [(r.id, r.state, r.running) for r in rows] == [(3, None, True), (4, None, False)]


def test_status_only_header_and_garbage():
    assert parse_status(HEADER + "\n") == []
    assert parse_status("") == []
    with pytest.raises(VmctlError):
        parse_status(HEADER + "\n   1 2 3\n")


def test_find_matches_the_name_exactly(mocker):
    # `vmctl status myvm` prints the header even when no VM has that name; a MAXMEM of
    # 1.0G on another row must not be taken for an id (the Go plugin's `(\d+)` did).
    out = HEADER + "\n" + FMT % (1, "-", 1, "1.0G", "-", "-", "root", "stopped", "tmpl") + "\n"
    run = mocker.Mock(return_value=subprocess.CompletedProcess([], 0, out, ""))
    drv = Driver("vmctl", run=run, env={"PATH": ""})
    assert drv.find("myvm") is None
    assert drv.find("tmpl").id == 1


def test_started_line():
    err = "vmctl: started vm 12 successfully, tty /dev/ttyp8\n"
    assert parse_started(err) == (12, "/dev/ttyp8")
    assert parse_started("vmctl: started vm 300 successfully, tty /dev/pts/4") == (
        300,
        "/dev/pts/4",
    )
    assert parse_started("vmctl: start vm command failed: Operation not permitted") is None


# --- addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "vm_id,host,guest",
    [(1, "100.64.1.2", "100.64.1.3"), (12, "100.64.12.2", "100.64.12.3"),
     (255, "100.64.255.2", "100.64.255.3"), (256, "100.65.0.2", "100.65.0.3"),
     (300, "100.65.44.2", "100.65.44.3"), (16383, "100.127.255.2", "100.127.255.3")],
)  # fmt: skip
def test_local_addresses(vm_id, host, guest):
    assert local_addresses(vm_id) == (host, guest)


def test_local_addresses_second_interface_and_limits():
    assert local_addresses(5, 1) == ("100.64.5.4", "100.64.5.5")
    assert local_addresses(2, prefix="10.0.0.0/8") == ("10.0.2.2", "10.0.2.3")
    with pytest.raises(VmctlError):
        local_addresses(16384)  # beyond 100.64.0.0/10: vmd says "dhcp address range exceeded"


IFCONFIG_TAP = """\
tap0: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> mtu 1500
\tlladdr fe:e1:ba:d0:11:22
\tdescription: vm12-if0-myvm
\tindex 7 priority 0 llprio 3
\tgroups: tap
\tstatus: active
\tinet 100.64.12.2 netmask 0xfffffffe
tap1: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> mtu 1500
\tlladdr fe:e1:ba:d0:11:23
\tdescription: vm3-if1-other
\tinet 100.64.3.4 netmask 0xfffffffe
tap2: flags=8802<BROADCAST,SIMPLEX,MULTICAST> mtu 1500
\tinet 10.9.9.9 netmask 0xffffff00
"""


def test_ifconfig_tap_by_description():
    assert parse_ifconfig_tap(IFCONFIG_TAP) == {(12, 0): "100.64.12.2", (3, 1): "100.64.3.4"}


def test_ifconfig_missing_is_quiet(mocker):
    run = mocker.Mock(side_effect=AssertionError("must not run"))
    assert Driver("vmctl", run=run, env={"PATH": "/nonexistent"}).ifconfig_tap() == {}
    run = mocker.Mock(return_value=subprocess.CompletedProcess([], 1, "", "no such interface"))
    drv = Driver("vmctl", run=run, env={"PATH": "/usr/sbin:/sbin:/usr/bin:/bin"})
    assert drv.ifconfig_tap() == {}


# --- errors ------------------------------------------------------------------------------


#: Every text vmctl 7.6 prints for the failures packwrap explains (vmctl.c
#: vm_start_complete / terminate_vm_complete; errno values from vmd.c), and a word of
#: the fix each explanation must name.
REAL_TEXTS = [
    ("vmctl: connect: /var/run/vmd.sock: No such file or directory", "rcctl start vmd"),
    ("vmctl: connect: /var/run/vmd.sock: Connection refused", "rcctl start vmd"),
    ("vmctl: connect: /var/run/vmd.sock: Permission denied", "socket owner <you>"),
    ("vmctl: start vm command failed: Operation not permitted", "owner <you>"),
    ("vmctl: start vm command failed: File name too long", "owner <you>` inside"),
    ("vmctl: start vm command failed: Too many processes", "another vm_name"),
    ("vmctl: start vm command failed: Operation already in progress", "vmctl stop -f -w"),
    ("vmctl: invalid template", "disk /dev/null"),
    ("vmctl: vmm bios firmware file not found.", "fw_update vmm"),
    ("vmctl: could not open disk image(s)", "disk image"),
    ("doas: Operation not permitted", "permit nopass <you> as root cmd /usr/sbin/vmctl"),
    ("doas: Authentication required", "nopass"),
]


@pytest.mark.parametrize("text,fix", REAL_TEXTS)
def test_real_vmctl_texts_are_explained_in_one_line(text, fix):
    explained = explain(text + "\n")
    assert explained.startswith(text) and fix in explained
    assert "\n" not in explained


def test_socket_hint_offers_doas_only_when_not_used():
    text = "vmctl: connect: /var/run/vmd.sock: Permission denied"
    assert "doas = true" in explain(text) and "doas = true" not in explain(text, doas=True)


def test_readiness_check_is_the_documented_doas_rule(mocker):
    """doas mode checks with `doas -n <vmctl> status`, which `permit nopass alice as root
    cmd /usr/sbin/vmctl` allows (a `doas -n true` would not be)."""
    run = mocker.Mock(return_value=subprocess.CompletedProcess([], 0, HEADER + "\n", ""))
    Driver("/usr/sbin/vmctl", doas=True, run=run, env={"PATH": ""}).check_ready()
    assert [c.args[0] for c in run.call_args_list] == [["doas", "-n", "/usr/sbin/vmctl", "status"]]
    run.return_value = subprocess.CompletedProcess([], 1, "", "doas: Operation not permitted\n")
    with pytest.raises(VmctlError, match="permit nopass <you> as root cmd /usr/sbin/vmctl"):
        Driver("/usr/sbin/vmctl", doas=True, run=run, env={"PATH": ""}).check_ready()
    run.return_value = subprocess.CompletedProcess(
        [], 1, "", "vmctl: connect: /var/run/vmd.sock: No such file or directory\n"
    )
    with pytest.raises(VmctlError, match="rcctl"):
        Driver("vmctl", run=run, env={"PATH": ""}).check_ready()
    with pytest.raises(VmctlError, match="not found"):
        Driver("/nonexistent/vmctl", env={"PATH": ""}).status()


def test_create_runs_as_the_user_even_with_doas(mocker):
    """vmctl create needs no vmd; under doas the image would be root's, mode 0600."""
    run = mocker.Mock(return_value=subprocess.CompletedProcess([], 0, "", ""))
    drv = Driver("/usr/sbin/vmctl", doas=True, run=run, env={"PATH": ""})
    drv.create("/o/x.qcow2", "qcow2", size=parse_size("2G"))
    assert run.call_args.args[0] == ["/usr/sbin/vmctl", "create", "-s", "2048M", "qcow2:/o/x.qcow2"]
    assert drv.console_argv("x") == ["doas", "-n", "/usr/sbin/vmctl", "console", "x"]


@pytest.mark.parametrize(
    "stderr,result",
    [
        ("stopping vm x: vm not found\n", False),  # ENOENT: vmd forgot it
        ("stopping vm x: failed: Invalid argument\n", False),  # EINVAL: not running
        ("stopping vm x: failed: Operation already in progress\n", True),  # EALREADY
    ],
)
def test_stop_texts(mocker, stderr, result):
    run = mocker.Mock(return_value=subprocess.CompletedProcess([], 1, "", stderr))
    assert Driver("vmctl", run=run, env={"PATH": ""}).stop("x") is result


def test_stop_raises_on_other_failures(mocker):
    run = mocker.Mock(
        return_value=subprocess.CompletedProcess(
            [], 1, "", "stopping vm x: failed: Operation not permitted\n"
        )
    )
    with pytest.raises(VmctlError, match="Operation not permitted"):
        Driver("vmctl", run=run, env={"PATH": ""}).stop("x")


def test_vmctl_path_resolution(monkeypatch, tmp_path):
    exe = tmp_path / "vmctl"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert Driver(env={"PATH": str(tmp_path)}).vmctl == str(exe)
    assert Driver(env={"PATH": str(tmp_path), "PACKWRAP_VMCTL": "/x/vmctl"}).vmctl == "/x/vmctl"
    assert Driver("/y/vmctl", env={"PACKWRAP_VMCTL": "/x/vmctl"}).vmctl == "/y/vmctl"
