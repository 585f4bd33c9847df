"""manifest and checksum post-processors: Packer's exact formats, and chain semantics."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import pytest

from packwrap.build.artifact import Artifact
from packwrap.config.schema import SourceBody
from packwrap.errors import PackwrapError
from packwrap.postprocess import PPContext, prepare_chains, run_chains
from packwrap.postprocess.manifest import ManifestPostProcessor
from packwrap.template.model import BlockSpec
from tests.state_support import RecordingUi


def ctx(tmp_path: Path, uuid: str = "u-1", force: bool = False) -> PPContext:
    return PPContext(
        "openbsd-76", "qemu", "qemu.openbsd-76", uuid, RecordingUi(), force=force, cwd=tmp_path
    )


@pytest.fixture
def artifact(tmp_path: Path) -> Artifact:
    out = tmp_path / "output-openbsd-76"
    out.mkdir()
    (out / "openbsd-76.qcow2").write_bytes(b"disk" * 1000)
    (out / "extra.txt").write_bytes(b"hello\n")
    return Artifact(
        "transcend.qemu",
        "VM",
        [str(out / "openbsd-76.qcow2"), str(out / "extra.txt")],
        f"VM files in directory: {out}",
    )


def chains(*specs: list[tuple[str, dict]]) -> list:
    return prepare_chains(
        [
            [BlockSpec(t, None, SourceBody(body, "t.pkr.hcl", 9)) for t, body in chain]
            for chain in specs
        ]
    )


def test_manifest_exact_format(tmp_path: Path, artifact: Artifact) -> None:
    run_chains(chains([("manifest", {})]), artifact, ctx(tmp_path))
    path = tmp_path / "packer-manifest.json"
    text = path.read_text()
    data = json.loads(text)
    assert list(data) == ["builds", "last_run_uuid"]
    entry = data["builds"][0]
    assert list(entry) == [
        "name",
        "builder_type",
        "build_time",
        "files",
        "artifact_id",
        "packer_run_uuid",
        "custom_data",
    ]
    assert entry["name"] == "openbsd-76"
    assert entry["builder_type"] == "qemu"
    assert isinstance(entry["build_time"], int)
    assert entry["files"] == [
        {"name": artifact.files[0], "size": 4000},
        {"name": artifact.files[1], "size": 6},
    ]
    assert entry["artifact_id"] == "VM"
    assert entry["packer_run_uuid"] == "u-1" == data["last_run_uuid"]
    assert entry["custom_data"] is None
    assert text.startswith('{\n  "builds": [\n    {\n      "name": "openbsd-76",')
    assert not text.endswith("\n")  # json.MarshalIndent + WriteFile: no newline
    assert path.stat().st_mode & 0o777 == 0o664 & ~_umask()
    assert not (tmp_path / "packer-manifest.json.lock").exists()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_manifest_appends_and_force_resets(tmp_path: Path, artifact: Artifact) -> None:
    c = chains(
        [
            (
                "manifest",
                {
                    "output": "out/m.json",
                    "strip_path": True,
                    "strip_time": True,
                    "custom_data": {"k": "v<&>"},
                },
            )
        ]
    )
    run_chains(c, artifact, ctx(tmp_path, "run-1"))
    run_chains(c, artifact, ctx(tmp_path, "run-2"))
    path = tmp_path / "out" / "m.json"
    data = json.loads(path.read_text())
    assert [b["packer_run_uuid"] for b in data["builds"]] == ["run-1", "run-2"]
    assert data["last_run_uuid"] == "run-2"
    assert "build_time" not in data["builds"][0]
    assert data["builds"][0]["files"][0]["name"] == "openbsd-76.qcow2"
    assert data["builds"][0]["custom_data"] == {"k": "v<&>"}
    assert "\\u003c\\u0026\\u003e" in path.read_text()  # Go's HTML-safe escapes
    # same run + force: appended (parallel builds of one run share the file)
    run_chains(c, artifact, ctx(tmp_path, "run-2", force=True))
    assert len(json.loads(path.read_text())["builds"]) == 3
    # a new run with -force starts the file over
    run_chains(c, artifact, ctx(tmp_path, "run-3", force=True))
    data = json.loads(path.read_text())
    assert [b["packer_run_uuid"] for b in data["builds"]] == ["run-3"]


def test_manifest_parallel_builds_all_recorded(tmp_path: Path, artifact: Artifact) -> None:
    c = chains([("manifest", {})])
    threads = [
        threading.Thread(target=run_chains, args=(c, artifact, ctx(tmp_path))) for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(json.loads((tmp_path / "packer-manifest.json").read_text())["builds"]) == 6


def test_manifest_lock_held_elsewhere(tmp_path: Path, artifact: Artifact, monkeypatch) -> None:
    (tmp_path / "packer-manifest.json.lock").write_text("")
    from packwrap.postprocess import manifest

    monkeypatch.setattr(
        manifest.FileLock,
        "__init__",
        lambda self, p, tries=3, delay=0.01: (
            setattr(self, "path", Path(str(p) + ".lock")),
            setattr(self, "tries", tries),
            setattr(self, "delay", delay),
        )[0],
    )
    with pytest.raises(PackwrapError, match="cannot lock"):
        run_chains(chains([("manifest", {})]), artifact, ctx(tmp_path))


def test_manifest_no_files_is_null(tmp_path: Path) -> None:
    a = Artifact("x", "Null", [], "nothing")
    ManifestPostProcessor().run(
        ManifestPostProcessor.schema.prepare(SourceBody({}))[0], a, ctx(tmp_path)
    )
    assert json.loads((tmp_path / "packer-manifest.json").read_text())["builds"][0]["files"] is None


def test_checksum_default_name_and_tab_format(tmp_path: Path, artifact: Artifact) -> None:
    results = run_chains(chains([("checksum", {})]), artifact, ctx(tmp_path))
    path = tmp_path / "packer_openbsd-76_qemu_md5.checksum"
    disk = hashlib.md5(b"disk" * 1000).hexdigest()
    extra = hashlib.md5(b"hello\n").hexdigest()
    assert path.read_text() == f"{disk}\topenbsd-76.qcow2\n{extra}\textra.txt\n"
    # the builder's artifact is kept, then the checksum artifact
    assert [a.builder_id for a in results] == ["transcend.qemu", "packer.post-processor.checksum"]
    assert results[1].id == ""
    assert results[1].files == [*artifact.files, str(path)]
    assert results[1].description.startswith("Created artifact from files: ")


def test_checksum_types_and_template_output_appends(tmp_path: Path, artifact: Artifact) -> None:
    c = chains(
        [
            (
                "checksum",
                {
                    "checksum_types": ["sha256", "sha512"],
                    "output": "sums/{{.BuildName}}.{{.ChecksumType}}",
                },
            )
        ]
    )
    run_chains(c, artifact, ctx(tmp_path))
    run_chains(c, artifact, ctx(tmp_path))  # appends, like Packer
    lines = (tmp_path / "sums" / "openbsd-76.sha256").read_text().splitlines()
    assert len(lines) == 4
    assert lines[0] == f"{hashlib.sha256(b'disk' * 1000).hexdigest()}\topenbsd-76.qcow2"
    assert (tmp_path / "sums" / "openbsd-76.sha512").exists()


def test_checksum_bad_type_is_a_config_error(tmp_path: Path) -> None:
    from packwrap.config.schema import ConfigError

    with pytest.raises(ConfigError, match="unrecognized checksum type 'crc32'"):
        chains([("checksum", {"checksum_types": ["crc32"]})])


def test_unknown_post_processor(tmp_path: Path) -> None:
    with pytest.raises(PackwrapError, match="post-processor 'docker-push' is not supported"):
        chains([("docker-push", {})])


def test_chain_semantics(tmp_path: Path, artifact: Artifact) -> None:
    # two chains: [manifest], [checksum]; like packer 1.6.6 with the null builder:
    # builder artifact, manifest's (same artifact), checksum's
    results = run_chains(chains([("manifest", {})], [("checksum", {})]), artifact, ctx(tmp_path))
    assert [a.builder_id for a in results] == [
        "transcend.qemu",
        "transcend.qemu",
        "packer.post-processor.checksum",
    ]
    # one chain manifest -> checksum: intermediate kept (checksum keeps its input)
    results = run_chains(chains([("manifest", {}), ("checksum", {})]), artifact, ctx(tmp_path))
    assert [a.builder_id for a in results] == [
        "transcend.qemu",
        "transcend.qemu",
        "packer.post-processor.checksum",
    ]
    # no post-processors: just the builder's
    assert run_chains([], artifact, ctx(tmp_path)) == [artifact]


def test_the_build_names_each_post_processor(tmp_path: Path, artifact: Artifact) -> None:
    c = chains([("manifest", {}), ("checksum", {"name": "sums"})])
    context = ctx(tmp_path)
    run_chains(c, artifact, context)
    said = [line for line in context.ui.lines if line.startswith("Running post-processor")]
    assert said == [
        "Running post-processor: manifest",
        "Running post-processor: sums (type checksum)",
    ]
