"""The qemu builder's provisioning around the build command, without booting anything:
provisioner blocks are checked before the install, and a bug in a step fails the build."""

from __future__ import annotations

from pathlib import Path

from packwrap.cli import main

TEMPLATE = """
source "qemu" "t" {
  iso_url          = "missing.iso"
  iso_checksum     = "none"
  output_directory = "out"
  communicator     = "ssh"
  ssh_username     = "root"
}

build {
  sources = ["source.qemu.t"]
  provisioner "shell" {
    inline  = ["true"]
    frobnicate = 1
  }
}
"""


def test_a_bad_provisioner_fails_before_the_install(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PACKWRAP_LOG_DIR", str(tmp_path / "logs"))
    (tmp_path / "t.pkr.hcl").write_text(TEMPLATE)
    assert main(["build", "-color=false", "t.pkr.hcl"]) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "t.pkr.hcl:14: unknown option 'frobnicate'" in text
    assert "missing.iso" not in text  # the media step never ran
    assert not (tmp_path / "out").exists()


def test_an_unexpected_exception_in_a_step_fails_the_build(tmp_path: Path, monkeypatch,
                                                           capsys) -> None:  # fmt: skip
    from packwrap_qemu import step_media

    def boom(self, state):
        raise RuntimeError("a bug")

    monkeypatch.setattr(step_media.StepResolveMedia, "run", boom)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PACKWRAP_LOG_DIR", str(tmp_path / "logs"))
    (tmp_path / "t.pkr.hcl").write_text(TEMPLATE.replace("    frobnicate = 1\n", ""))
    assert main(["build", "-color=false", "t.pkr.hcl"]) == 1
    text = "".join(capsys.readouterr())
    assert "internal error: RuntimeError: a bug (traceback in the log)" in text
    log = (tmp_path / "logs" / "packwrap-qemu.t.log").read_text()
    assert "Traceback" in log and "RuntimeError: a bug" in log


def test_provisioning_boot_options_are_checked() -> None:
    from packwrap_qemu.builder import QemuBuilder

    from packwrap.config.schema import SourceBody

    def problems(**values):
        body = SourceBody({"kernel": "bsd.rd", "communicator": "none", **values}, "t", 1)
        return [p.option for p in QemuBuilder.schema.prepare(body)[1]]

    assert problems(provision_kernel="bsd.rd", provision_initrd="i",
                    provision_kernel_args="pwfixture.mode=installed") == []  # fmt: skip
    assert problems(provision_initrd="i") == ["provision_initrd"]
    assert problems(provision_kernel_args="x") == ["provision_kernel_args"]
    config = QemuBuilder.schema.prepare(SourceBody({"kernel": "k"}, "t", 1))[0]
    assert config.ssh_clear_authorized_keys is True  # packwrap's default (Packer: false)


def test_common_provisioner_options_are_parsed_once() -> None:
    from packwrap.config.schema import SourceBody
    from packwrap.errors import PackwrapError
    from packwrap.provision.step import prepare_provisioners
    from packwrap.template.model import BlockSpec

    def block(kind: str, body: dict) -> BlockSpec:
        return BlockSpec(kind, None, SourceBody(body, "t.pkr.hcl", 7))

    ((_, _, shell), (_, _, upload)) = prepare_provisioners(
        [
            block("shell", {"inline": ["true"], "pause_before": "1m30s", "except": ["qemu.a"]}),
            block("file", {"content": "x", "destination": "/tmp/x", "pause_before": "2s"}),
        ]
    )
    assert shell.pause_before == 90.0 and shell.excluded == ["qemu.a"] and shell.only is None
    assert upload.pause_before == 2.0 and upload.excluded == []
    try:
        prepare_provisioners([block("shell", {"inline": ["true"], "pause_before": "soon"})])
    except PackwrapError as exc:  # caught when the template is checked, not mid-build
        assert "pause_before" in str(exc) and "t.pkr.hcl" in str(exc)
    else:
        raise AssertionError("a bad pause_before was accepted")


def test_a_provisioner_without_the_common_options_gets_them() -> None:
    from packwrap.config.schema import STRING, Option, Schema, SourceBody
    from packwrap.provision.base import ProvisionerConfig
    from packwrap.provision.step import _with_common_options

    plain = Schema([Option("note", STRING, "")])  # a plugin's, typed as a plain Config
    schema = _with_common_options(plain)
    config, problems, _ = schema.prepare(SourceBody({"only": ["qemu.a"], "pause_before": "1s"}))
    assert problems == [] and isinstance(config, ProvisionerConfig)
    assert config.only == ["qemu.a"] and config.pause_before == 1.0 and config.excluded == []
