"""The install cache key: each install input changed alone changes it; what runs after
the install (provisioners, shutdown, post-processors, output names) does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from packwrap_qemu.builder import QemuBuilder
from packwrap_qemu.qemu import install_inputs

from packwrap.config.schema import SourceBody
from packwrap.installcache.key import canonical_json, install_document, key_of
from tests import state_support

BASE: dict[str, Any] = {
    "iso_url": "install76.iso",
    "iso_checksum": "none",
    "http_directory": "http",
    "communicator": "ssh",
    "ssh_username": "root",
    "disk_size": "2G",
    "boot_command": ["A<enter>", "http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.conf<enter>"],
    "output_directory": "output",
    "vm_name": "img.qcow2",
    "shutdown_command": "shutdown -p now",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "http").mkdir()
    (tmp_path / "http" / "install.conf.pkr.in").write_text(
        "System hostname = openbsd\nPublic ssh key for root account = {{ .SSHPublicKey }}\n"
    )
    (tmp_path / "http" / "disklabel").write_text("/ 1G-* 100%\n")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "install.site").write_text("#!/bin/sh\necho site\n")
    (tmp_path / "install76.iso").write_bytes(b"medium 7.6")
    return tmp_path


def key(project: Path, provisioners: list[Any] | None = None, **changes: Any) -> str:
    values = {**BASE, **changes}
    values = {k: v for k, v in values.items() if v is not None}
    config, problems, _ = QemuBuilder.schema.prepare(SourceBody(values, file="t", line=1))
    assert problems == []
    state = state_support.make_state(config, template_dir=project)
    state.provisioners = provisioners or []
    state.data["iso_path"] = project / "install76.iso"
    return key_of(install_document(state, install_inputs(state)))


def test_the_key_is_stable(project):
    assert key(project) == key(project)
    assert len(key(project)) == 64


@pytest.mark.parametrize(
    "path, text",
    [
        ("http/install.conf.pkr.in", "System hostname = other\n"),  # hostname
        ("http/disklabel", "/ 2G-* 100%\n"),  # the disklabel template
        ("site/install.site", "#!/bin/sh\necho changed\n"),  # a site set file
        ("site/etc/added.conf", "new file\n"),  # a new site set file
        ("install76.iso", "another medium"),  # the medium
    ],
)
def test_a_served_file_or_the_medium_changed_alone_changes_the_key(project, path, text):
    before = key(project)
    target = project / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    assert key(project) != before


@pytest.mark.parametrize(
    "change",
    [
        {"disk_size": "3G"},
        {"format": "raw"},
        {"disk_interface": "ide"},
        {"qemu_binary": "qemu-system-aarch64"},  # arch
        {"machine_type": "q35"},
        {"cpu_model": "qemu64"},
        {"efi_boot": True},  # firmware
        {"memory": "1G"},
        {"boot_command": ["S<enter>"]},
        {"boot_expect": ["(A)utoinstall or (S)hell? "]},
        {"kernel": "bsd.rd", "kernel_args": "pwfixture.cd=1"},
        {"ssh_password": "other"},  # credentials reach install.conf
    ],
)
def test_each_builder_input_changed_alone_changes_the_key(project, change):
    assert key(project, **change) != key(project)


def test_the_hostname_as_a_project_value_changes_the_key(project):
    from packwrap.installcache.key import core_inputs

    config, _, _ = QemuBuilder.schema.prepare(SourceBody(BASE, file="t", line=1))
    state = state_support.make_state(config, template_dir=project)
    state.data["project_values"] = {"hostname": "a"}
    first = core_inputs(state)
    state.data["project_values"] = {"hostname": "b"}
    assert core_inputs(state) != first


def test_what_runs_after_the_install_leaves_the_key_alone(project):
    before = key(project)
    provisioners = [("shell", {"inline": ["echo hi"]}, "t", 9)]
    assert key(project, provisioners=provisioners) == before
    assert key(project, shutdown_command="halt -p", shutdown_timeout="1m") == before
    assert key(project, output_directory="elsewhere", vm_name="other.qcow2") == before
    assert key(project, ssh_clear_authorized_keys=False) == before
    assert key(project, disk_compression=True, skip_compaction=True) == before
    (project / "files").mkdir()
    (project / "files" / "motd").write_text("provisioned\n")  # a provisioner's file
    assert key(project) == before


def test_secrets_enter_the_document_only_as_hashes(project):
    config, _, _ = QemuBuilder.schema.prepare(
        SourceBody({**BASE, "ssh_password": "hunter2-secret"}, file="t", line=1)
    )
    state = state_support.make_state(config, template_dir=project)
    state.data["project_values"] = {"root_password": "$2b$10$bcrypthash", "hostname": "h"}
    state.data["iso_path"] = project / "install76.iso"
    text = canonical_json(install_document(state, install_inputs(state)))
    assert "hunter2-secret" not in text and "bcrypthash" not in text
    assert '"hostname":"h"' in text


def test_a_verified_sha256_stands_for_the_medium_without_a_second_read(project):
    import hashlib

    from packwrap_qemu.step_media import StepResolveMedia

    iso = project / "install76.iso"
    digest = hashlib.sha256(iso.read_bytes()).hexdigest()

    def resolved(checksum: str):
        values = {**BASE, "iso_url": str(iso), "iso_checksum": checksum}
        config, problems, _ = QemuBuilder.schema.prepare(SourceBody(values, file="t", line=1))
        assert problems == []
        state = state_support.make_state(config, template_dir=project)
        StepResolveMedia().run(state)
        return state

    unchecked = resolved("none")
    plain = key_of(install_document(unchecked, install_inputs(unchecked)))
    verified = resolved(f"sha256:{digest}")
    assert verified.data["iso_sha256"] == f"sha256:{digest}"
    iso.write_bytes(b"changed after the check")  # not read again: the verified digest counts
    assert key_of(install_document(verified, install_inputs(verified))) == plain
