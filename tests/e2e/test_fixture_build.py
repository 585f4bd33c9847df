"""The fixture builder: outputs, OpenBSD-format checksums and signatures,
the stamp cache and the lock (no VM boots here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from tests.fixture_support import BUILDER, fixture_dir

pytestmark = pytest.mark.e2e


def signify(*args: str, cwd) -> subprocess.CompletedProcess:
    if shutil.which("signify-openbsd") is None:
        pytest.skip("signify-openbsd is not installed")
    return subprocess.run(["signify-openbsd", *args], capture_output=True, text=True, cwd=cwd)


def test_outputs_and_openbsd_checksum_files():
    fx = fixture_dir()
    for name in ("vmlinuz", "initrd.gz", "bsd.rd", "bsd.rd.initrd", "install76.iso"):
        assert (fx / name).stat().st_size > 1 << 20, name
    assert (fx / "bsd.rd").read_bytes() == (fx / "vmlinuz").read_bytes()
    assert (fx / "bsd.rd.initrd").read_bytes()[:4] in (b"\x02\x21\x4c\x18", b"\x1f\x8b\x08\x00")
    lines = (fx / "SHA256").read_text().splitlines()
    assert len(lines) == 5
    assert all(re.fullmatch(r"SHA256 \([\w.]+\) = [0-9a-f]{64}", ln) for ln in lines)
    pub = str(fx / "openbsd-76-base.pub")
    r = signify("-C", "-p", pub, "-x", "SHA256.sig", cwd=fx)
    assert r.returncode == 0 and "install76.iso: OK" in r.stdout, r.stdout + r.stderr
    sets = fx / "mirror/pub/OpenBSD/7.6/amd64"
    r = signify("-C", "-p", pub, "-x", "SHA256.sig", cwd=sets)
    assert r.returncode == 0 and "base76.tgz: OK" in r.stdout, r.stdout + r.stderr
    index = (sets / "index.txt").read_text()
    assert re.search(r" base76\.tgz$", index, re.M) and re.search(r" INSTALL\.amd64$", index, re.M)
    iso = (fx / "install76.iso").read_bytes()
    assert iso[0x8001:0x8006] == b"CD001" and b"EL TORITO SPECIFICATION" in iso[:0x10000]
    assert (fx / "ssh_host_ed25519_key.pub").read_text().startswith("ssh-ed25519 ")


def test_second_run_is_cached_and_concurrent_runs_build_once(tmp_path):
    fx = fixture_dir()  # its .debs are shared, so nothing is downloaded here
    env = dict(os.environ, PWFIXTURE_DEB_DIR=str(fx / "debs"))
    out = tmp_path / "fx"
    argv = [sys.executable, str(BUILDER), str(out)]
    procs = [subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        logs = [p.communicate(timeout=120)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], logs
    assert sum("built " in log for log in logs) == 1, logs
    assert sum("is up to date" in log for log in logs) == 1, logs
    stamp = (out / "stamp.json").stat().st_mtime
    t0 = time.monotonic()
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "is up to date" in r.stderr
    assert time.monotonic() - t0 < 5
    assert (out / "stamp.json").stat().st_mtime == stamp
