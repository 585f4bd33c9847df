"""The QEMU command line, the KVM probe and the QMP client, without starting a VM."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest
from packwrap_qemu import driver
from packwrap_qemu.driver import qemu_argv

from packwrap.config.size import Size
from packwrap.errors import PackwrapError
from tests.qemu_spec_support import pairs, spec


def test_hermetic_network_relays_only_to_the_http_server():
    argv = qemu_argv(spec(hermetic=True, http_port=8123, fwd_command="busybox nc 127.0.0.1"))
    assert pairs(argv, "-netdev") == [
        "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:busybox nc 127.0.0.1 8123"
    ]
    assert "virtio-net-pci,netdev=n0,romfile=" in pairs(argv, "-device")


def test_packer_style_network_and_ssh_forward():
    argv = qemu_argv(spec(ssh_host_port=3022))
    assert pairs(argv, "-netdev") == ["user,id=n0,hostfwd=tcp:127.0.0.1:3022-:22"]


def test_guestfwd_command_with_comma_is_refused():
    with pytest.raises(PackwrapError, match="comma"):
        qemu_argv(spec(hermetic=True, http_port=1, fwd_command="/odd,path/python -m x"))


def test_control_switches_and_console():
    argv = qemu_argv(spec())
    for switch in ("-nodefaults", "-no-user-config", "-S", "-no-reboot"):
        assert switch in argv
    assert pairs(argv, "-qmp") == ["unix:/t/qmp.sock,server=on,wait=off"]
    assert pairs(argv, "-chardev") == ["pty,id=ser0"]
    assert pairs(argv, "-serial") == ["chardev:ser0"]
    assert pairs(argv, "-display") == ["none"]
    assert pairs(argv, "-m") == ["512M"]
    assert "-no-reboot" not in qemu_argv(spec(no_reboot=False))
    assert "-serial" not in qemu_argv(spec(serial_console=False))


def test_disk_interfaces():
    opts = "file=/o/disk,format=qcow2,cache=writeback,discard=ignore,detect-zeroes=off"
    argv = qemu_argv(spec())
    assert pairs(argv, "-drive") == [f"{opts},if=none,id=d0"]
    assert "virtio-blk-pci,drive=d0" in pairs(argv, "-device")
    argv = qemu_argv(spec(disk_interface="virtio-scsi"))
    scsi = ["virtio-scsi-pci,id=scsi0", "scsi-hd,bus=scsi0.0,drive=d0"]
    assert pairs(argv, "-device")[:2] == scsi
    assert pairs(qemu_argv(spec(disk_interface="ide")), "-drive") == [f"{opts},if=ide,index=0"]


def test_iso_boot_and_kernel_boot():
    argv = qemu_argv(spec(iso_path=Path("/m/install76.iso")))
    assert "file=/m/install76.iso,media=cdrom,if=ide,index=2,readonly=on" in pairs(argv, "-drive")
    assert pairs(argv, "-boot") == ["once=d"]
    argv = qemu_argv(spec(kernel=Path("/m/bsd.rd"), initrd=Path("/m/i.gz"), kernel_args="x=1 y"))
    assert pairs(argv, "-kernel") == ["/m/bsd.rd"]
    assert pairs(argv, "-initrd") == ["/m/i.gz"]
    assert pairs(argv, "-append") == ["x=1 y"]
    assert "-boot" not in argv


def test_qemuargs_replace_defaults_by_switch_but_never_the_control_ones():
    argv = qemu_argv(spec(user_args=[["-m", "1024M"], ["-device", "e1000,netdev=n0"],
                                     ["-serial", "file:extra.log"], ["-no-hpet"]]))  # fmt: skip
    assert pairs(argv, "-m") == ["1024M"]
    # Packer's rule: one user -device drops every default -device.
    assert pairs(argv, "-device") == ["e1000,netdev=n0"]
    # packwrap's console stays (the user's serial becomes the second port).
    assert pairs(argv, "-serial") == ["file:extra.log", "chardev:ser0"]
    assert "-no-hpet" in argv


def _fake_qmp(path: Path, events: list[dict]) -> threading.Thread:
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        f = conn.makefile("rwb", buffering=0)
        f.write(b'{"QMP": {"version": {}, "capabilities": []}}\n')
        for line in f:
            cmd = json.loads(line)["execute"]
            if cmd == "query-chardev":
                reply = [{"label": "ser0", "filename": "pty:/dev/pts/77"}]
            elif cmd == "bogus":
                f.write(b'{"error": {"class": "CommandNotFound", "desc": "no bogus"}}\n')
                continue
            else:
                reply = {}
            for ev in events:
                f.write(json.dumps(ev).encode() + b"\n")
            events.clear()
            f.write(json.dumps({"return": reply}).encode() + b"\n")
            if cmd == "quit":
                break
        conn.close()
        srv.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t


def test_qmp_client_commands_and_events(tmp_path):
    path = tmp_path / "q.sock"
    events = [{"event": "SHUTDOWN", "data": {"guest": True, "reason": "guest-shutdown"}}]
    t = _fake_qmp(path, events)
    qmp = driver.Qmp(path)
    assert qmp.execute("query-chardev")[0]["filename"] == "pty:/dev/pts/77"
    with pytest.raises(PackwrapError, match="no bogus"):
        qmp.execute("bogus")
    qmp.execute("quit")
    t.join(2)
    qmp.close()
    assert qmp.shutdown_reasons() == ["guest-shutdown"]


def test_qemu_img_errors_are_one_line(tmp_path):
    with pytest.raises(PackwrapError) as err:
        driver.create_disk(tmp_path / "d", "nonsense", Size.of_mib(1))
    assert str(err.value).startswith("qemu-img create failed: ")
    assert "\n" not in str(err.value)


def test_python_guestfwd_relay_reaches_only_the_given_loopback_port():
    import subprocess
    import sys

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def serve():
        conn, _ = srv.accept()
        data = conn.recv(100)
        conn.sendall(b"got " + data)
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    proc = subprocess.run(
        [sys.executable, "-m", "packwrap_qemu.fwd", str(port)],
        input=b"GET /",
        capture_output=True,
        timeout=10,
    )
    srv.close()
    assert proc.stdout == b"got GET /"


def test_guestfwd_command_falls_back_to_python(mocker):
    mocker.patch("shutil.which", return_value=None)
    assert driver.guestfwd_command().endswith("-m packwrap_qemu.fwd")


def test_seabios_serial_console(tmp_path):
    path = driver.write_sercon_file(tmp_path)
    assert path.read_bytes() == b"\xf8\x03"  # COM1, little-endian
    argv = qemu_argv(spec(sercon_file=path))
    assert pairs(argv, "-fw_cfg") == [f"name=etc/sercon-port,file={path}"]
    assert "-fw_cfg" not in qemu_argv(spec())
