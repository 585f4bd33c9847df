"""The vagrant and vmdk post-processors on real disk images (qemu-img), boxes checked
against Vagrant's box format and added with the real `vagrant box add` when installed.

The layouts checked here (test data, from the providers' documentation):
- Vagrant's box file format (vagrant website/content/docs/boxes/format.mdx): a tar or
  tar.gz holding metadata.json (with "provider"), a Vagrantfile and the provider's files.
- vagrant-libvirt's box format (vagrant-libvirt docs/boxes.markdown): box.img, a qcow2
  image; metadata.json {"provider": "libvirt", "format": "qcow2", "virtual_size": GiB}.
- vagrant-openbsd, the vmd(8) provider (github.com/double-p/vagrant-openbsd, its BOXING
  guide at commit 921895e4): metadata.json, Vagrantfile, disk.img; added with
  `--provider=openbsd`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from packwrap.build.artifact import Artifact
from packwrap.config.schema import ConfigError, SourceBody
from packwrap.errors import Cancelled, PackwrapError
from packwrap.postprocess import PPContext, prepare_chains, run_chains
from packwrap.template.model import BlockSpec
from tests.state_support import RecordingUi

needs_qemu_img = pytest.mark.skipif(not shutil.which("qemu-img"), reason="qemu-img absent")


def ctx(tmp_path: Path, builder: str = "qemu", force: bool = False) -> PPContext:
    name = f"{builder}.openbsd-76"
    return PPContext("openbsd-76", builder, name, "u", RecordingUi(), force=force, cwd=tmp_path)


def chain(kind: str, body: dict, line: int = 9) -> list:
    return prepare_chains([[BlockSpec(kind, None, SourceBody(body, "t.pkr.hcl", line))]])


def make_disk(path: Path, fmt: str, size: str = "1536M") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), size], check=True)
    with open(path, "r+b") as fh:  # a recognisable first sector (raw only: qcow2 has a header)
        if fmt == "raw":
            fh.write(b"OPENBSD-BOOT")
    return path


def qemu_artifact(tmp_path: Path, fmt: str = "qcow2", accel: str = "kvm") -> Artifact:
    disk = make_disk(tmp_path / "output-openbsd-76" / "openbsd-76", fmt)
    return Artifact(
        "transcend.qemu",
        "VM",
        [str(disk)],
        "",
        state={"diskName": "openbsd-76", "diskPaths": [str(disk)], "domainType": accel},
    )


def vmm_artifact(tmp_path: Path) -> Artifact:
    disk = make_disk(tmp_path / "output" / "openbsd-76.raw", "raw", "64M")
    return Artifact(
        "packer.openbsd-vmm", "VMM", [str(disk)], "", state={"diskName": "openbsd-76.raw"}
    )


def box_members(box: Path) -> dict[str, bytes]:
    subprocess.run(["gzip", "-t", str(box)], check=True)
    with tarfile.open(box, "r:gz") as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
        }


def vagrant_box_add(tmp_path: Path, box: Path, provider: str) -> list[str]:
    """`vagrant box add` into a private VAGRANT_HOME; the files Vagrant unpacked."""
    home = tmp_path / "vagrant-home"
    env = {**os.environ, "VAGRANT_HOME": str(home), "VAGRANT_CHECKPOINT_DISABLE": "1"}
    subprocess.run(
        ["vagrant", "box", "add", "--name", "packwrap-test", "--provider", provider, str(box)],
        check=True,
        capture_output=True,
        env=env,
        timeout=120,
    )
    added = home / "boxes" / "packwrap-test" / "0"
    return sorted(str(p.relative_to(added)) for p in added.rglob("*") if p.is_file())


@needs_qemu_img
def test_libvirt_box_from_the_qemu_builder(tmp_path: Path) -> None:
    artifact = qemu_artifact(tmp_path)
    results = run_chains(chain("vagrant", {"architecture": "amd64"}), artifact, ctx(tmp_path))
    box = tmp_path / "packer_openbsd-76_libvirt_amd64.box"
    assert [(a.builder_id, a.id, a.files) for a in results] == [
        ("mitchellh.post-processor.vagrant", "libvirt", [str(box)])
    ]
    members = box_members(box)
    assert sorted(members) == ["Vagrantfile", "box.img", "metadata.json"]
    assert json.loads(members["metadata.json"]) == {
        "provider": "libvirt",
        "format": "qcow2",
        "virtual_size": 2,  # 1.5 GiB, rounded up
        "architecture": "amd64",
    }
    assert members["box.img"] == Path(artifact.files[0]).read_bytes()
    assert 'libvirt.driver = "kvm"' in members["Vagrantfile"].decode()
    if shutil.which("vagrant"):
        assert vagrant_box_add(tmp_path, box, "libvirt") == [
            "libvirt/Vagrantfile",
            "libvirt/box.img",
            "libvirt/metadata.json",
        ]


@needs_qemu_img
def test_a_raw_disk_becomes_qcow2_in_a_libvirt_box(tmp_path: Path) -> None:
    artifact = qemu_artifact(tmp_path, fmt="raw", accel="tcg")
    body = {"output": "out/{{.Provider}}.box", "compression_level": 0}
    run_chains(chain("vagrant", body), artifact, ctx(tmp_path))
    box = tmp_path / "out" / "libvirt.box"
    with tarfile.open(box, "r:") as tar:  # level 0: a plain tar, as Packer's
        tar.extract("box.img", tmp_path / "x", filter="data")
        metadata = json.load(tar.extractfile("metadata.json"))  # type: ignore[arg-type]
        vagrantfile = tar.extractfile("Vagrantfile").read().decode()  # type: ignore[union-attr]
    info = subprocess.run(
        ["qemu-img", "info", "--output=json", str(tmp_path / "x" / "box.img")],
        check=True,
        capture_output=True,
    )
    assert json.loads(info.stdout)["format"] == "qcow2" == metadata["format"]
    assert 'libvirt.driver = "qemu"' in vagrantfile


@needs_qemu_img
def test_vmd_box_from_openbsd_vmm(tmp_path: Path) -> None:
    artifact = vmm_artifact(tmp_path)
    extra = tmp_path / "README.box"
    extra.write_text("read me\n")
    template = tmp_path / "Vagrantfile.tpl"
    template.write_text('# built by {{ .BuildName }} for {{ .Provider }}\nVAGRANT_X = "1"\n')
    body = {
        "output": "{{ .BuildName }}-{{ .Provider }}.box",
        "include": [str(extra)],
        "vagrantfile_template": str(template),
        "architecture": "amd64",
        "keep_input_artifact": True,
    }
    results = run_chains(chain("vagrant", body), artifact, ctx(tmp_path, "openbsd-vmm"))
    box = tmp_path / "openbsd-76-openbsd.box"
    assert [a.files for a in results] == [artifact.files, [str(box)]]
    members = box_members(box)
    assert sorted(members) == ["README.box", "Vagrantfile", "disk.img", "metadata.json"]
    assert json.loads(members["metadata.json"]) == {
        "provider": "openbsd",
        "format": "raw",
        "virtual_size": 1,  # GiB, never 0
        "architecture": "amd64",
    }
    assert members["disk.img"].startswith(b"OPENBSD-BOOT")
    vagrantfile = members["Vagrantfile"].decode()
    assert "config.vm.guest = :openbsd" in vagrantfile
    assert "# built by openbsd-76 for openbsd\nVAGRANT_X" in vagrantfile
    if shutil.which("vagrant"):
        added = vagrant_box_add(tmp_path, box, "openbsd")
        assert "openbsd/disk.img" in added and "openbsd/metadata.json" in added


@needs_qemu_img
def test_override_and_provider_override(tmp_path: Path) -> None:
    artifact = vmm_artifact(tmp_path)
    body = {
        "provider_override": "libvirt",
        "override": {"libvirt": {"output": "lv.box"}},
    }
    results = run_chains(chain("vagrant", body), artifact, ctx(tmp_path, "openbsd-vmm"))
    assert results[0].id == "libvirt" and results[0].files == [str(tmp_path / "lv.box")]
    assert json.loads(box_members(tmp_path / "lv.box")["metadata.json"])["format"] == "qcow2"


@needs_qemu_img
def test_existing_box_needs_force_and_nothing_partial_is_left(tmp_path: Path) -> None:
    artifact = qemu_artifact(tmp_path)
    (tmp_path / "my.box").write_text("mine")
    with pytest.raises(PackwrapError, match=r"my.box already exists \(use -force"):
        run_chains(chain("vagrant", {"output": "my.box"}), artifact, ctx(tmp_path))
    assert (tmp_path / "my.box").read_text() == "mine"
    broken = Artifact("transcend.qemu", "VM", [str(tmp_path / "gone")], "", {})
    with pytest.raises(PackwrapError, match="qemu-img failed: .*gone"):
        run_chains(chain("vagrant", {"output": "b.box"}), broken, ctx(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my.box", "output-openbsd-76"]


@needs_qemu_img
def test_ctrl_c_leaves_no_partial_box(tmp_path: Path) -> None:
    artifact = qemu_artifact(tmp_path, fmt="raw")
    c = ctx(tmp_path)
    (pp,) = chain("vagrant", {"output": "b.box"})[0]
    c.cancel_event.set()  # Ctrl-C: seen while qemu-img runs and while the tar is written
    with pytest.raises(Cancelled):
        pp.impl.run(pp.config, artifact, c)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["output-openbsd-76"]


def test_provider_override_packwrap_cannot_build(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        chain("vagrant", {"provider_override": "virtualbox"}, line=14)
    assert str(exc.value.problems[0]) == (
        "t.pkr.hcl:14: provider_override 'virtualbox': packwrap builds only libvirt and "
        "openbsd (vmd) boxes; hand this build to packer for the others"
    )
    with pytest.raises(ConfigError, match="the given provider_override vbox is not valid"):
        chain("vagrant", {"provider_override": "vbox"})
    with pytest.raises(ConfigError, match="vagrantfile_template 'nope.tpl' does not exist"):
        chain("vagrant", {"vagrantfile_template": "nope.tpl"})
    with pytest.raises(ConfigError) as exc:
        chain("vagrant", {"override": {"libvirt": {"compression_level": 11}}}, line=30)
    assert str(exc.value.problems[0]) == (
        "t.pkr.hcl:30: override.libvirt.compression_level 11: expected an integer from 0 to 9"
    )
    (tmp_path / "metadata.json").write_text("{}")
    with pytest.raises(ConfigError, match="would replace the box's own metadata.json"):
        chain("vagrant", {"include": [str(tmp_path / "metadata.json")]})


def test_missing_programs_are_named_at_validate(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    with pytest.raises(ConfigError) as exc:
        chain("vagrant", {}, line=20)
    assert [str(p) for p in exc.value.problems] == [
        "t.pkr.hcl:20: vagrant: needs the program 'qemu-img', which is not on PATH "
        "(Debian package qemu-utils)",
        "t.pkr.hcl:20: vagrant: needs the program 'tar', which is not on PATH (Debian package tar)",
    ]
    with pytest.raises(ConfigError, match="vmdk: needs the program 'qemu-img'"):
        chain("vmdk", {})


def test_unknown_artifact_needs_provider_override(tmp_path: Path) -> None:
    other = Artifact("packer.post-processor.artifice", "", [str(tmp_path / "x")], "")
    with pytest.raises(PackwrapError, match="can't build box: packer.post-processor.artifice"):
        run_chains(chain("vagrant", {}), other, ctx(tmp_path))


@needs_qemu_img
def test_stream_optimized_vmdk(tmp_path: Path) -> None:
    artifact = qemu_artifact(tmp_path, fmt="raw")
    results = run_chains(chain("vmdk", {}), artifact, ctx(tmp_path))
    target = tmp_path / "packer_openbsd-76_qemu.vmdk"
    assert [a.files for a in results] == [[str(target)]]
    info = subprocess.run(
        ["qemu-img", "info", "--output=json", str(target)], check=True, capture_output=True
    )
    data = json.loads(info.stdout)
    assert data["format"] == "vmdk"
    assert data["format-specific"]["data"]["create-type"] == "streamOptimized"
    assert data["virtual-size"] == 1536 << 20
    with pytest.raises(PackwrapError, match="already exists"):
        run_chains(chain("vmdk", {}), artifact, ctx(tmp_path))
    with pytest.raises(ConfigError, match="'flat' is not one of streamOptimized"):
        chain("vmdk", {"subformat": "flat"})
