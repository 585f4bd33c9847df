"""The openbsd-vmm schema: the Go plugin's options and rules, the seed's old names, and
packwrap's decisions for talk-era templates (no vm_template, no boot_device)."""

from __future__ import annotations

from pathlib import Path

import pytest
from packwrap_vmm.builder import VmmBuilder
from packwrap_vmm.config import SCHEMA, install_boot_device, media_path, wants_provisioning

from packwrap.config.schema import SourceBody
from packwrap.config.size import Size

REPO = Path(__file__).resolve().parents[2]
BASE = {"vm_name": "myvm", "output_directory": "images", "disk_size": "1500M", "boot": "/bsd.rd"}


def prepare(**values):
    body = SourceBody({**BASE, **values}, file="t.pkr.json", line=3, lines={"disk_base": 7})
    return SCHEMA.prepare(body)


def test_seed_demo_prepares_without_problems():
    from packwrap.template import load_template, select_builds

    build = select_builds(load_template(REPO / "tests" / "data" / "seed-demo.json"))[0]
    config, problems, warnings = VmmBuilder.schema.prepare(build.source.body)
    assert problems == [] and warnings == []
    # the seed's pre-PR#8 names are aliases of today's options
    assert config.cdrom == "~/Downloads/install65.iso" and config.boot == "/bsd.rd"
    assert config.vm_template is None and config.communicator is None
    assert install_boot_device(config) == "net"  # else vmd restarts the VM after install
    assert not wants_provisioning(config, has_provisioners=False)  # install-only, one boot
    assert config.gen_files_pattern == "myvm" and config.gen_files_extension == "pkr.in"
    assert config.install_timeout == 3600.0 and config.doas is False


def test_ram_size_alias_and_defaults():
    config, problems, _ = prepare(ram_size="1G")
    assert not problems
    assert config.memory == Size.of_mib(1024)
    assert config.disk_format == "raw" and config.log_directory == ""


@pytest.mark.parametrize(
    "values,message",
    [
        ({"vm_name": None}, "missing required option 'vm_name'"),
        ({"output_directory": None}, "output_directory"),
        ({"disk_size": None}, "disk_size must be specified"),
        ({"disk_base": "/b.qcow2"}, "disk_base needs disk_format"),
        ({"disk_format": "vmdk"}, "not one of"),
        ({"boot_device": "floppy"}, "not one of"),
        ({"communicator": "winrm"}, "not one of"),
        ({"vm_name": "9lives"}, "vmctl(8) names"),
        ({"disk_size": "lots"}, "expected a size"),
        ({"boot_device": "net", "boot": None, "cdrom": "/i.iso"}, "needs boot"),
        ({"ssh_password": "x", "ssh_agent_auth": True}, "set only one of"),
        ({"communicator": "ssh"}, "ssh_username must be specified"),
        ({"bios": "/bsd.rd"}, "same option"),
        ({"install_timeout": "-1s"}, "install_timeout must be positive"),
        # vm_template alone: no -B, so vmd would restart the installer at its reboot
        ({"boot": None, "vm_template": "openbsd-builder"}, "the install cannot end"),
        ({"boot": None, "boot_device": "cdrom"}, "needs cdrom"),
    ],
)
def test_problems(values, message):
    body = {**BASE, **values}
    for key, value in values.items():
        if value is None:
            body.pop(key)
    _config, problems, _ = SCHEMA.prepare(SourceBody(body, file="t.json", line=1))
    assert problems, values
    assert any(message in p.message for p in problems), [p.message for p in problems]


def test_disk_base_with_qcow2_needs_no_size():
    config, problems, _ = prepare(disk_base="/b.qcow2", disk_format="qcow2", disk_size=None)
    assert not problems


def test_problem_names_the_line():
    _config, problems, _ = prepare(disk_base="/b.qcow2")
    assert str(problems[0]).startswith("t.pkr.json:7: ")


def test_boot_device_defaults():
    assert install_boot_device(prepare()[0]) == "net"
    assert install_boot_device(prepare(boot=None, cdrom="/i.iso")[0]) == "cdrom"
    assert install_boot_device(prepare(boot_device="disk")[0]) == "disk"


def test_communicator():
    ssh, problems, _ = prepare(communicator="ssh", ssh_username="root")
    assert not problems and wants_provisioning(ssh, has_provisioners=False)
    none, _, _ = prepare(communicator="none")
    assert not wants_provisioning(none, has_provisioners=True)
    auto, _, _ = prepare()
    assert wants_provisioning(auto, has_provisioners=True)


def test_media_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "bsd.rd").write_text("")
    assert media_path("~/x.iso", "/nowhere") == str(tmp_path / "x.iso")
    monkeypatch.chdir(tmp_path)
    assert media_path("tpl/bsd.rd", "/nowhere") == str(tmp_path / "tpl" / "bsd.rd")
    assert media_path("bsd.rd", tmp_path / "tpl") == str(tmp_path / "tpl" / "bsd.rd")
    assert media_path(None, tmp_path) is None


def test_steps_in_the_go_plugin_order():
    config, _, _ = prepare()
    names = [s.name for s in VmmBuilder().steps(config)]
    order = ["output directory", "create disk", "start vm (install)", "http server",
             "generated files", "boot command", "wait for install", "start vm (provision)",
             "connect", "provision", "shutdown"]  # fmt: skip
    assert [n for n in names if n in order] == order
