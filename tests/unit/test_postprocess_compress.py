"""The compress post-processor on real files: every format decompressed by its own tool
and compared, Packer's name rule, sparse GNU tar for GCE's disk.raw, bad input."""

from __future__ import annotations

import gzip
import io
import lzma
import os
import shutil
import subprocess
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from packwrap.build.artifact import Artifact
from packwrap.config.schema import ConfigError, SourceBody
from packwrap.errors import Cancelled, PackwrapError
from packwrap.postprocess import PPContext, prepare_chains, run_chains
from packwrap.postprocess.archive import ArchiveFormat, compression_level, detect
from packwrap.template.model import BlockSpec
from tests.state_support import RecordingUi

DISK = os.urandom(50_000) + b"\0" * 200_000 + b"end"


def ctx(tmp_path: Path, force: bool = False) -> PPContext:
    return PPContext(
        "openbsd-76", "qemu", "qemu.openbsd-76", "u-1", RecordingUi(), force=force, cwd=tmp_path
    )


def chain(body: dict, line: int = 9) -> list:
    return prepare_chains([[BlockSpec("compress", None, SourceBody(body, "t.pkr.hcl", line))]])


@pytest.fixture
def artifact(tmp_path: Path) -> Artifact:
    out = tmp_path / "output-openbsd-76"
    out.mkdir()
    (out / "openbsd-76.qcow2").write_bytes(DISK)
    (out / "notes.txt").write_bytes(b"hello\n")
    files = [str(out / "openbsd-76.qcow2"), str(out / "notes.txt")]
    return Artifact("transcend.qemu", "VM", files, f"VM files in directory: {out}")


def one_file(artifact: Artifact) -> Artifact:
    return Artifact(artifact.builder_id, "VM", artifact.files[:1], artifact.description)


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        # Packer's table (post-processor/compress detectFromFilename), plus xz and zst
        ("packer_{{.BuildName}}_{{.BuilderType}}", "", ArchiveFormat("tar", "gzip")),
        ("box.tar", "", ArchiveFormat("tar", None)),
        ("box.zip", "", ArchiveFormat("zip", None)),
        ("box.tar.gz", "", ArchiveFormat("tar", "gzip")),
        ("disk.gz", "", ArchiveFormat(None, "gzip")),
        ("disk.lz4", "", ArchiveFormat(None, "lz4")),
        ("disk.tar.lz4", "", ArchiveFormat("tar", "lz4")),
        ("disk.bgzf", "", ArchiveFormat(None, "bgzf")),
        ("disk.xz", "", ArchiveFormat(None, "xz")),
        ("disk.tar.xz", "", ArchiveFormat("tar", "xz")),
        ("disk.zst", "", ArchiveFormat(None, "zstd")),
        ("disk.tar.zst", "", ArchiveFormat("tar", "zstd")),
        ("disk.img", "", ArchiveFormat("tar", "gzip")),  # unknown: tar.gz, name kept
        ("out", "tar.xz", ArchiveFormat("tar", "xz")),  # format replaces detection
        ("out.zip", "gz", ArchiveFormat(None, "gzip")),
        ("dir.v2/image", "", ArchiveFormat("tar", "gzip")),  # the file name decides
    ],
)
def test_format_by_name(name: str, fmt: str, expected: ArchiveFormat) -> None:
    assert detect(name, fmt) == expected


def test_compression_level_is_packers() -> None:
    assert [compression_level(v) for v in (None, 0, -1, 1, 9, 12)] == [6, 6, 6, 1, 9, 9]
    with pytest.raises(ValueError, match="1 to 9"):
        compression_level(-2)


def _decompress(path: Path, compression: str | None) -> bytes:
    data = path.read_bytes()
    if compression == "gzip":
        subprocess.run(["gzip", "-t", str(path)], check=True)
        return gzip.decompress(data)
    if compression == "xz":
        return lzma.decompress(data)
    if compression == "zstd":
        return subprocess.run(["zstd", "-dc", str(path)], check=True, capture_output=True).stdout
    if compression == "lz4":
        return subprocess.run(["lz4", "-dc", str(path)], check=True, capture_output=True).stdout
    if compression == "bgzf":
        out = subprocess.run(["bgzip", "-dc", str(path)], check=True, capture_output=True)
        return out.stdout
    return data


@pytest.mark.parametrize(
    "output", ["disk.gz", "disk.xz", "disk.zst", "disk.lz4", "disk.bgzf", "disk.tar.zst"]
)
def test_each_compression_round_trips(tmp_path: Path, artifact: Artifact, output: str) -> None:
    fmt = detect(output)
    for program in fmt.programs():
        if not shutil.which(program):
            pytest.skip(f"{program} is not installed")
    source = artifact if fmt.archive else one_file(artifact)
    results = run_chains(chain({"output": output, "compression_level": 9}), source, ctx(tmp_path))
    target = tmp_path / output
    assert [a.files for a in results] == [[str(target)]]  # input not kept: Packer's default
    assert results[0].builder_id == "packer.post-processor.compress"
    assert results[0].description == f"compressed artifacts in: {target}"
    data = _decompress(target, fmt.compression)
    if fmt.archive == "tar":
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            assert tar.getnames() == ["openbsd-76.qcow2", "notes.txt"]
            member = tar.extractfile("openbsd-76.qcow2")
            assert member is not None and member.read() == DISK
    else:
        assert data == DISK
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_default_output_is_a_gzipped_tar_named_as_packer(
    tmp_path: Path, artifact: Artifact
) -> None:
    run_chains(chain({"keep_input_artifact": True}), artifact, ctx(tmp_path))
    target = tmp_path / "packer_openbsd-76_qemu"
    subprocess.run(["gzip", "-t", str(target)], check=True)
    listing = subprocess.run(["tar", "-tzf", str(target)], check=True, capture_output=True)
    assert listing.stdout.decode().split() == ["openbsd-76.qcow2", "notes.txt"]


def test_tar_xz_and_zip_hold_every_file(tmp_path: Path, artifact: Artifact) -> None:
    results = run_chains(
        chain({"output": "{{.BuildName}}.zip", "keep_input_artifact": True}),
        artifact,
        ctx(tmp_path),
    )
    assert [a.builder_id for a in results] == ["transcend.qemu", "packer.post-processor.compress"]
    with zipfile.ZipFile(tmp_path / "openbsd-76.zip") as z:
        assert z.testzip() is None
        assert z.namelist() == ["openbsd-76.qcow2", "notes.txt"]
        assert z.read("openbsd-76.qcow2") == DISK
    run_chains(chain({"output": "all", "format": "tar.xz"}), artifact, ctx(tmp_path))
    with tarfile.open(tmp_path / "all", "r:xz") as tar:
        assert tar.getnames() == ["openbsd-76.qcow2", "notes.txt"]


def test_gce_disk_raw_tar_gz_is_sparse(tmp_path: Path) -> None:
    """GCE's import format: disk.raw alone in a GNU tar, gzipped, holes kept as holes."""
    raw = tmp_path / "output" / "disk.raw"
    raw.parent.mkdir()
    with open(raw, "wb") as fh:
        fh.write(b"MBR" + b"\1" * 509)
        fh.truncate(64 << 20)  # 64 MiB, nearly all a hole
    artifact = Artifact("transcend.qemu", "VM", [str(raw)], "")
    run_chains(chain({"output": "openbsd-gce.tar.gz"}), artifact, ctx(tmp_path))
    target = tmp_path / "openbsd-gce.tar.gz"
    assert target.stat().st_size < 100_000
    listing = subprocess.run(["tar", "-tvzf", str(target)], check=True, capture_output=True)
    assert listing.stdout.decode().split()[-1] == "disk.raw"
    assert " 67108864 " in listing.stdout.decode()
    with tarfile.open(target, "r:gz") as tar:
        (member,) = tar.getmembers()
        assert member.name == "disk.raw" and member.issparse() and member.size == 64 << 20
        extracted = tar.extractfile(member)
        assert extracted is not None and extracted.read(512) == b"MBR" + b"\1" * 509


def test_existing_output_needs_force(tmp_path: Path, artifact: Artifact) -> None:
    (tmp_path / "disk.gz").write_bytes(b"mine")
    with pytest.raises(PackwrapError, match=r"disk.gz already exists \(use -force"):
        run_chains(chain({"output": "disk.gz"}), one_file(artifact), ctx(tmp_path))
    assert (tmp_path / "disk.gz").read_bytes() == b"mine"
    run_chains(chain({"output": "disk.gz"}), one_file(artifact), ctx(tmp_path, force=True))
    assert gzip.decompress((tmp_path / "disk.gz").read_bytes()) == DISK


def test_many_files_without_an_archive_is_packers_error(tmp_path: Path, artifact: Artifact) -> None:
    with pytest.raises(PackwrapError, match="can only have 1 input file when not using tar/zip"):
        run_chains(chain({"output": "disk.xz"}), artifact, ctx(tmp_path))
    assert list(tmp_path.glob("*.xz")) == [] and list(tmp_path.glob(".disk*")) == []


def test_ctrl_c_leaves_no_partial_archive(tmp_path: Path, artifact: Artifact) -> None:
    c = ctx(tmp_path)
    c.cancel_event = threading.Event()
    c.cancel_event.set()
    pps = chain({"output": "disk.tar.zst"})
    with pytest.raises(Cancelled):
        pps[0][0].impl.run(pps[0][0].config, artifact, c)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["output-openbsd-76"]


def test_a_failing_compressor_is_quoted(tmp_path: Path, artifact: Artifact, monkeypatch) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "zstd").write_text("#!/bin/sh\necho 'zstd: cannot allocate the window' >&2\nexit 1\n")
    (fake / "zstd").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    with pytest.raises(PackwrapError, match="zstd failed: zstd: cannot allocate the window"):
        run_chains(chain({"output": "disk.zst"}), one_file(artifact), ctx(tmp_path))
    assert not (tmp_path / "disk.zst").exists()


def test_bad_level_and_missing_program_are_config_errors(monkeypatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        chain({"output": "a.gz", "compression_level": -5}, line=12)
    assert str(exc.value.problems[0]) == (
        "t.pkr.hcl:12: compression_level -5: expected an integer from 1 to 9"
    )
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    with pytest.raises(ConfigError) as exc:
        chain({"output": "a.tar.zst"})
    messages = [p.message for p in exc.value.problems]
    assert messages == [
        "compress: zstd needs the program 'tar', which is not on PATH (Debian package tar)",
        "compress: zstd needs the program 'zstd', which is not on PATH (Debian package zstd)",
    ]
    with pytest.raises(ConfigError, match=r"'bgzip'.*\(Debian package tabix\)"):
        chain({"output": "a", "format": "bgzf"})


def test_the_archive_goes_down_the_chain(tmp_path: Path, artifact: Artifact) -> None:
    """[compress, manifest]: the manifest records the archive, not the disk (Packer's
    chain hands each post-processor the previous one's artifact)."""
    import json

    specs = [
        BlockSpec("compress", None, SourceBody({"output": "a.tar.gz"}, "t.pkr.hcl", 9)),
        BlockSpec("manifest", None, SourceBody({"strip_path": True}, "t.pkr.hcl", 12)),
    ]
    results = run_chains(prepare_chains([specs]), artifact, ctx(tmp_path))
    # the archive (manifest keeps its input) and manifest's artifact: the same file
    assert [a.files for a in results] == [[str(tmp_path / "a.tar.gz")]] * 2
    entry = json.loads((tmp_path / "packer-manifest.json").read_text())["builds"][0]
    assert [f["name"] for f in entry["files"]] == ["a.tar.gz"]
