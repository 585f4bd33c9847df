"""`packwrap fetch-iso` as a user runs it: a subprocess against a real loopback mirror.

Real SIGINT, a real RLIMIT_FSIZE "disk full", two processes racing for one file, and a
project whose variables are read and written back. Every subprocess is ended by its pid
in a finally block, even when an assertion fails.
"""

from __future__ import annotations

import os
import resource
import signal
import threading
from pathlib import Path

import pytest

from tests.mirror_support import SIGNIFY, Rule, build_mirror, make_keys, serve, wait_for
from tests.packwrap_runner import run_cli, started

pytestmark = pytest.mark.skipif(SIGNIFY is None, reason="signify-openbsd not installed")

SIZE = 4 << 20
ISO = "/7.6/amd64/install76.iso"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"), "openbsd-76-base")


@pytest.fixture
def mirror(tmp_path, keys):
    return build_mirror(tmp_path / "mirror", {"install76.iso": SIZE}, keys=keys)


@pytest.fixture
def server(mirror):
    with serve(mirror.root) as s:
        yield s


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ)
    e["PACKWRAP_CACHE_DIR"] = str(tmp_path / "cache")
    e["PACKWRAP_SIGNIFY_DIR"] = str(tmp_path / "no-etc-signify")
    e.pop("XDG_CACHE_HOME", None)
    for n in ("http", "https", "all"):  # loopback only: never through a proxy
        e.pop(f"{n}_proxy", None)
        e.pop(f"{n.upper()}_PROXY", None)
    return e


def packwrap(*args: str) -> list[str]:
    """fetch-iso's arguments, for run_cli and started (tests/packwrap_runner.py)."""
    return ["fetch-iso", *args]


def partial_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "media" / "partial").rglob("*.part"))


def cached_media(tmp_path: Path) -> list[Path]:
    root = tmp_path / "cache" / "media" / "sha256"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_cli_success_output(tmp_path, mirror, server, keys, env):
    out = tmp_path / "iso"
    p = run_cli(
        *packwrap(
            "--release",
            "7.6",
            "--mirror",
            server.url,
            "--signify-key",
            str(keys.pub),
            "--output",
            str(out),
        ),
        env=env,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        f"signify: openbsd-76-base.pub, key {keys.keynum} -> SHA256 -> install76.iso OK",
        f"verified: {out / 'install76.iso'}",
    ]
    # Not a terminal: sparse plain lines, no bar.
    assert "downloading install76.iso (4.0 MiB)" in p.stderr
    assert len(p.stderr.splitlines()) <= 6
    quiet = run_cli(
        *packwrap(
            "--release", "7.6", "--mirror", server.url, "--signify-key", str(keys.pub), "--quiet"
        ),
        env=env,
    )
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert quiet.stdout.strip() == str(cached_media(tmp_path)[0])


def test_cli_errors_are_one_line(tmp_path, mirror, server, keys, env):
    # 7.4: a release the blueprint pins no key for.
    p = run_cli(*packwrap("--release", "7.4", "--mirror", server.url), env=env)
    assert p.returncode == 1
    assert p.stderr.startswith("Error: no signify key for OpenBSD 7.4")
    assert len(p.stderr.strip().splitlines()) == 1
    # 7.6 without --signify-key: the blueprint's pinned release key is used, says so, and
    # refuses this mirror's SHA256.sig (signed by a test key).
    p = run_cli(*packwrap("--release", "7.6", "--mirror", server.url), env=env)
    assert p.returncode == 1
    assert "using signify key " in p.stderr and "keys/openbsd-76-base.pub" in p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: {server.url}/7.6/amd64/SHA256.sig: verification failed")
    assert "checked against wrong key (openbsd-76-base.pub is key e4bb09f899babca2" in last
    assert not list((tmp_path / "cache").rglob("install76.iso*"))
    server.add_rule(ISO, Rule(status=404))
    p = run_cli(
        *packwrap(
            "--release",
            "7.6",
            "--mirror",
            server.url,
            "--mirror",
            server.url + "/b",
            "--signify-key",
            str(keys.pub),
        ),
        env=env,
    )
    assert p.returncode == 1 and "Traceback" not in p.stderr
    err = p.stderr.strip().splitlines()[-1]
    assert err.startswith("Error: could not fetch SHA256.sig from any mirror") or err.startswith(
        "Error: could not download install76.iso from any mirror"
    )


def test_ctrl_c_keeps_partial_and_next_run_resumes(tmp_path, mirror, server, keys, env):
    server.add_rule(ISO, Rule(stall_at=SIZE // 2, stall_seconds=20, times=1))
    argv = packwrap(
        "--release",
        "7.6",
        "--mirror",
        server.url,
        "--signify-key",
        str(keys.pub),
        "--output",
        str(tmp_path / "out"),
    )
    with started(*argv, env=env) as proc:
        assert wait_for(
            lambda: any(p.stat().st_size >= SIZE // 2 for p in partial_files(tmp_path)), 20
        )
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert "Error: interrupted; partial download kept for resume" in err
    [part] = partial_files(tmp_path)
    assert part.stat().st_size == SIZE // 2
    assert cached_media(tmp_path) == [] and not (tmp_path / "out" / "install76.iso").exists()
    again = run_cli(*argv, env=env)
    assert again.returncode == 0, again.stderr
    assert "resuming at 2.0 MiB" in again.stderr
    resumed = server.requests_for(ISO)[-1]
    assert resumed.range == f"bytes={SIZE // 2}-" and resumed.bytes_sent == SIZE // 2
    assert partial_files(tmp_path) == []


def _limit_file_size():
    # The child may write at most 1 MiB per file: writes beyond fail with EFBIG
    # (packwrap ignores SIGXFSZ so it gets the error instead of being killed).
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def test_disk_full_is_a_clear_error_and_leaves_nothing(tmp_path, mirror, server, keys, env):
    out = tmp_path / "out"
    p = run_cli(
        *packwrap(
            "--release",
            "7.6",
            "--mirror",
            server.url,
            "--signify-key",
            str(keys.pub),
            "--output",
            str(out),
        ),
        env=env,
        preexec_fn=_limit_file_size,
    )
    assert p.returncode == 1
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: disk full writing ") and "File too large" in last
    assert cached_media(tmp_path) == [] and partial_files(tmp_path) == []
    assert not (out / "install76.iso").exists()


def test_two_processes_one_download(tmp_path, mirror, server, keys, env):
    release = threading.Event()
    server.add_rule(ISO, Rule(stall_at=SIZE // 2, stall_seconds=30, resume=release, times=1))
    argv = packwrap("--release", "7.6", "--mirror", server.url, "--signify-key", str(keys.pub))
    with started(*argv, env=env) as a:
        assert wait_for(lambda: bool(partial_files(tmp_path)), 20)
        with started(*argv, env=env) as b:
            first_line = b.stderr.readline()  # b blocks on the lock while a is stalled
            release.set()
            out_b, err_b = b.communicate(timeout=30)
        out_a, err_a = a.communicate(timeout=30)
    assert a.returncode == 0 and b.returncode == 0, (err_a, err_b)
    assert first_line.startswith("waiting for another packwrap fetching install76.iso")
    assert "cached copy re-verified, no download" in out_b
    assert len(server.requests_for(ISO)) == 1


PROJECT_HCL = """\
variable "release" {
  type    = string
  default = "7.5"
}
variable "arch" {
  type    = string
  default = "amd64"
}
variable "mirror" {
  type    = string
  default = "https://cdn.openbsd.org/pub/OpenBSD"
}
variable "iso_file" {
  type    = string
  default = ""
}
variable "iso_url" {
  type    = string
  default = ""
}
variable "iso_checksum" {
  type    = string
  default = "none"
}
source "qemu" "openbsd" {
  iso_url      = var.iso_url
  iso_checksum = var.iso_checksum
}
build {
  sources = ["source.qemu.openbsd"]
}
"""


def test_project_variables_in_and_out(tmp_path, mirror, server, keys, env):
    project = tmp_path / "myimage"
    project.mkdir()
    (project / "openbsd.pkr.hcl").write_text(PROJECT_HCL)
    vars_file = project / "openbsd.auto.pkrvars.hcl"
    vars_file.write_text(f'# chosen by hand\nrelease = "7.6"\nmirror = "{server.url}"\n')
    p = run_cli(*packwrap("--signify-key", str(keys.pub)), env=env, cwd=project)
    assert p.returncode == 0, p.stderr
    [media] = cached_media(tmp_path)
    assert p.stdout.splitlines()[:2] == [
        f"signify: openbsd-76-base.pub, key {keys.keynum} -> SHA256 -> install76.iso OK",
        f"verified: {media}",
    ]
    assert f"recorded iso_url and iso_checksum in {vars_file}" in p.stdout
    text = vars_file.read_text()
    assert text.startswith("# chosen by hand\n")
    assert f'iso_url      = "{media}"' in text
    assert f'iso_checksum = "sha256:{mirror.sha256("install76.iso")}"' in text
    # The template model sees the recorded values: a build can now run offline.
    from packwrap.template import load_template

    variables = load_template(project).variables
    assert variables["iso_url"] == str(media)
    assert variables["iso_checksum"] == f"sha256:{mirror.sha256('install76.iso')}"


def test_arm64_project_fetches_its_medium_from_the_arm64_directory(tmp_path, keys, env):
    """Issue 13: `packwrap new --arch arm64` writes a project whose fetch-iso downloads the
    arm64 medium (<mirror>/7.6/arm64/<iso_file>), here the install76.img it can name."""
    mirror = build_mirror(
        tmp_path / "mirror", {"install76.img": SIZE, "install76.iso": SIZE}, arch="arm64", keys=keys
    )
    project = tmp_path / "a64"
    made = run_cli(
        "new", "openbsd-76", str(project), "--arch", "arm64", "--builder", "qemu",
        "--no-root-password", "--var", "iso_file=install76.img", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    [vars_file] = project.glob("*.auto.pkrvars.hcl")
    with serve(mirror.root) as server:
        text = vars_file.read_text()
        vars_file.write_text(text.replace("https://cdn.openbsd.org/pub/OpenBSD", server.url))
        p = run_cli(*packwrap("--signify-key", str(keys.pub)), env=env, cwd=project)
        assert p.returncode == 0, p.stderr
        server.wait_idle()
        assert {r.path for r in server.log if r.path.endswith((".img", ".iso"))} == {
            "/7.6/arm64/install76.img"
        }
    [media] = cached_media(tmp_path)
    assert media.name == "install76.img"
    recorded = vars_file.read_text()
    assert f'"sha256:{mirror.sha256("install76.img")}"' in recorded, recorded
    assert f'"{media}"' in recorded, recorded
