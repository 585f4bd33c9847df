"""The qemu source's schema: Packer's defaults, packwrap's checks, one problem per fault."""

from __future__ import annotations

import pytest
from packwrap_qemu.builder import QemuBuilder
from packwrap_qemu.config import names
from packwrap_qemu.driver import qemu_img_size

from packwrap.config.schema import SourceBody
from packwrap.config.size import Size

BASE = {"iso_url": "install76.iso", "iso_checksum": "none", "communicator": "none"}


def prepare(**values):
    body = SourceBody({**BASE, **values}, file="t.pkr.hcl", line=3, lines={"disk_size": 7})
    return QemuBuilder.schema.prepare(body)


def test_packer_defaults():
    config, problems, warnings = prepare()
    assert problems == [] and warnings == []
    assert config.format == "qcow2"
    assert config.disk_size == Size(40960 * 2**20)
    assert str(config.disk_size) == "40960M"  # Packer's artifact metadata shows the text
    assert config.disk_interface == "virtio"
    assert config.accelerator == "auto"
    assert config.machine_type is None  # per arch: pc (x86), virt (arm64); see machine.py
    assert config.memory == Size.of_mib(512)
    assert config.shutdown_timeout == 300.0
    assert config.serial_console is True
    assert config.hermetic_network is False
    assert names(config, "openbsd-76") == (
        "packer-openbsd-76",
        names(config, "x")[1].parent / "output-openbsd-76",
    )


@pytest.mark.parametrize(
    ("given", "arg"),
    [("40960M", "40960M"), ("1024", "1024M"), ("2g", "2048M"), ("65536b", "65536")],
)
def test_disk_size_bare_number_is_megabytes(given, arg):
    config, problems, _ = prepare(disk_size=given)
    assert problems == []
    assert qemu_img_size(config.disk_size) == arg


def test_bad_disk_size_names_its_line():
    _, problems, _ = prepare(disk_size="lots")
    assert [(p.line, p.option) for p in problems] == [(7, "disk_size")]
    _, problems, _ = prepare(disk_size="0")
    assert [p.message for p in problems] == ["disk_size '0': must be greater than zero"]


def test_remote_iso_points_to_fetch_iso():
    _, problems, _ = prepare(iso_url="https://cdn.openbsd.org/pub/OpenBSD/7.6/amd64/install76.iso")
    assert len(problems) == 1
    assert "packwrap fetch-iso" in problems[0].message


def test_remote_iso_with_target_path_is_fine():
    _, problems, _ = prepare(iso_url="https://example.org/install76.iso", iso_target_path="i.iso")
    assert problems == []


def test_kernel_boot_needs_no_iso():
    body = SourceBody({"kernel": "bsd.rd", "communicator": "none"}, file="t.pkr.hcl", line=1)
    _, problems, _ = QemuBuilder.schema.prepare(body)
    assert problems == []


def test_media_and_exclusive_options():
    body = SourceBody({"communicator": "none", "initrd": "i"}, file="t.pkr.hcl", line=1)
    _, problems, _ = QemuBuilder.schema.prepare(body)
    messages = " / ".join(p.message for p in problems)
    assert "iso_url, iso_urls or kernel is required" in messages
    assert "initrd needs kernel" in messages
    _, problems, _ = prepare(boot_command=["A<enter>"], boot_steps=[["A<enter>", "autoinstall"]])
    assert any("mutually exclusive" in p.message for p in problems)


def test_choices_and_unknown_options():
    _, problems, _ = prepare(format="vmdk", disk_sise="1G")
    messages = sorted(p.message for p in problems)
    assert any("'vmdk' is not one of qcow2, raw" in m for m in messages)
    assert any("did you mean 'disk_size'" in m for m in messages)


def test_vnc_options_have_packers_defaults_and_rules():
    config, problems, warnings = prepare()
    assert problems == [] and warnings == []
    assert (config.vnc_bind_address, config.vnc_port_min, config.vnc_port_max) == (
        "127.0.0.1",
        5900,
        6000,
    )
    assert not config.disable_vnc and not config.vnc_use_password
    for values, message in (
        ({"vnc_port_min": 5899}, "vnc_port_min cannot be below 5900"),
        ({"vnc_port_min": 6001}, "vnc_port_min must be less than vnc_port_max"),
        (
            {"vnc_port_max": 70000},
            "vnc_port_min and vnc_port_max must both be TCP ports (at most 65535)",
        ),
        ({"vnc_password": "123456789"}, "vnc_password is longer than 8 characters (9)"),
        ({"vnc_bind_address": "127.0.0.1,password=off"}, "not an address"),
    ):
        _, problems, _ = prepare(**values)
        assert len(problems) == 1 and message in problems[0].message, values


def test_raw_cannot_be_compressed():
    _, problems, _ = prepare(format="raw", disk_compression=True)
    assert [p.option for p in problems] == ["disk_compression"]


def test_steps_follow_packers_order():
    config, _, _ = prepare(http_directory="http")
    names_ = [s.name for s in QemuBuilder().steps(config)]
    order = ["resolve boot media", "prepare output directory", "create disk",
             "discover HTTP address", "http server", "start QEMU", "boot command",
             "wait for power-off", "convert disk"]  # fmt: skip
    assert [n for n in names_ if n in order] == order


def test_boot_steps_become_the_boot_command():
    config, problems, _ = prepare(boot_steps=[["A<enter>", "autoinstall"], ["x<enter>"]])
    assert problems == []
    assert config.boot_command == ["A<enter>", "x<enter>"]
    _, problems, _ = prepare(boot_steps=[["<wait-1m>", "a negative wait is invalid"]])
    assert [p.option for p in problems] == ["boot_command"]


def test_boot_command_needs_the_serial_console():
    _, problems, _ = prepare(serial_console=False, boot_command=["A<enter>"])
    assert [p.option for p in problems] == ["serial_console"]


def test_qemu_img_args_block_or_map():
    config, problems, _ = prepare(qemu_img_args=[{"create": ["-o", "cluster_size=64k"]}])
    assert problems == [] and config.qemu_img_args == {"create": ["-o", "cluster_size=64k"]}
    config, problems, _ = prepare(qemu_img_args={"convert": ["-W"]})
    assert problems == [] and config.qemu_img_args == {"convert": ["-W"]}
    _, problems, _ = prepare(qemu_img_args={"rebase": ["-u"]})
    assert [p.option for p in problems] == ["qemu_img_args"]
