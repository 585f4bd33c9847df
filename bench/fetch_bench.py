#!/usr/bin/env python3
"""Fetch + verify of a large file from a loopback mirror, against curl, in the same run.

    .venv/bin/python bench/fetch_bench.py [--size-mib 512] [--rounds 5]

Method
- A mirror tree in a temp dir: <size> MiB of random bytes as 7.6/amd64/install76.iso,
  SHA256 signed (embedded) with a fresh key by the real signify-openbsd; served by
  tests/mirror_support.MirrorServer (ThreadingHTTPServer + sendfile) on 127.0.0.1.
- Each round runs, in turn, with fresh output/cache dirs (deleted after each run):
    A  curl -s -o FILE URL                                (transfer + disk write)
    B  sh -c 'curl -s -o FILE URL && sha256sum FILE'      (the naive verify)
    C  .venv/bin/packwrap fetch-iso --release 7.6 --mirror URL --signify-key K --output DIR --quiet
       (fresh cache: fetches SHA256.sig, verifies it, downloads, hashes on the way,
       renames into the cache, hard-links to DIR; includes interpreter start-up)
    D  the same for a 1 KiB file: packwrap's fixed cost (start-up, SHA256.sig, signify)
  Wall time per child (perf_counter around spawn..wait); peak RSS from wait4()'s rusage.
  The order is shuffled each round (fixed seed), with os.sync() and 0.5 s between runs;
  reported: median and min over the rounds (a warm-up round is discarded). Timings on
  this VM are noisy (page-cache allocation under a balloon/free-page-reporting host):
  compare the cases within one run only.
- Resume: the server stalls the body at 50 % (rule stall_at); once the partial file holds
  exactly 50 %, the client is killed (SIGKILL, and separately SIGINT). A second run
  resumes. Bytes re-fetched = bytes the server sent across both runs - file size (exact
  here because the stalled first run received everything that was sent).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.mirror_support import Rule, build_mirror, make_keys, serve, wait_for  # noqa: E402

PY = str(REPO / ".venv" / "bin" / "python")
PACKWRAP = str(REPO / ".venv" / "bin" / "packwrap")  # the console script users run
ISO = "/7.6/amd64/install76.iso"


def run_child(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, float]:
    """-> (wall seconds, peak RSS in KiB, CPU seconds user+sys of the child tree).

    The peak RSS comes from GNU time's %M when /usr/bin/time exists (the child is
    exec'd from a small process); wait4()'s ru_maxrss would include this Python
    parent's size, copied into the child before exec.
    """
    rss_file = Path(tempfile.mktemp(prefix="rss-"))
    wrapped = argv
    if Path("/usr/bin/time").exists():
        wrapped = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *argv]
    t0 = time.perf_counter()
    proc = subprocess.Popen(wrapped, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, rusage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if code != 0:
        raise SystemExit(f"{argv[0]} failed ({code}): {err.strip()}")
    rss = rusage.ru_maxrss
    if rss_file.exists():
        rss = int(rss_file.read_text().split()[-1])
        rss_file.unlink()
    return elapsed, rss, rusage.ru_utime + rusage.ru_stime


def make_random_file(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    size = args.size_mib << 20
    if not shutil.which("curl"):
        raise SystemExit("curl is needed: apt-get install -y --no-install-recommends curl")

    # Like an installed wheel: byte-compiled (scripts/setup does the same), so the run does
    # not recompile packwrap's modules when PYTHONDONTWRITEBYTECODE is set.
    subprocess.run([PY, "-m", "compileall", "-q", "packwrap", "plugin"], cwd=REPO, check=True)
    work = Path(tempfile.mkdtemp(prefix="fetch-bench-"))
    try:
        keys = make_keys(work / "keys", "openbsd-76-base")
        iso_dir = work / "mirror" / "7.6" / "amd64"
        iso_dir.mkdir(parents=True)
        make_random_file(iso_dir / "install76.iso", size)
        # bsd.rd (1 KiB) measures packwrap's fixed cost: start-up, SHA256.sig, signify.
        build_mirror(work / "mirror", {"bsd.rd": 1024}, keys=keys)  # + SHA256, SHA256.sig
        with serve(work / "mirror") as server:
            url = server.url + ISO
            results = bench_speed(work, server.url, url, keys.pub, args.rounds)
            resume = {
                sig: bench_resume(work, server, keys.pub, size, sig) for sig in ("KILL", "INT")
            }
        report(args.size_mib, args.rounds, results, resume)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_speed(work: Path, base: str, url: str, pub: Path, rounds: int) -> dict[str, list]:
    out = work / "out"
    env = dict(os.environ, PACKWRAP_SIGNIFY_DIR=str(work / "none"))
    cases = {
        "curl -o": lambda: run_child(["curl", "-s", "-o", str(out / "f.iso"), url]),
        "curl -o && sha256sum": lambda: run_child(
            ["sh", "-c", f"curl -s -o {out}/f.iso {url} && sha256sum {out}/f.iso >/dev/null"]
        ),
        "packwrap fetch-iso": lambda: run_child(
            [
                PACKWRAP,
                "fetch-iso",
                "--release",
                "7.6",
                "--mirror",
                base,
                "--signify-key",
                str(pub),
                "--output",
                str(out),
                "--quiet",
            ],
            env=dict(env, PACKWRAP_CACHE_DIR=str(work / "cache")),
        ),
        "packwrap, 1 KiB file": lambda: run_child(
            [
                PACKWRAP,
                "fetch-iso",
                "--release",
                "7.6",
                "--mirror",
                base,
                "--signify-key",
                str(pub),
                "--output",
                str(out),
                "--quiet",
                "--file",
                "bsd.rd",
            ],
            env=dict(env, PACKWRAP_CACHE_DIR=str(work / "cache")),
        ),
    }
    results: dict[str, list] = {k: [] for k in cases}
    names = list(cases)
    order = random.Random(76)  # a fixed seed: the same orders in every run of the bench
    for r in range(rounds + 1):
        # A shuffled order each round: a rotation would keep the cyclic neighbours, and
        # whichever case follows `curl && sha256sum` starts while its output is still
        # being freed.
        for name in order.sample(names, len(names)):
            fn = cases[name]
            out.mkdir()
            seconds, rss, cpu = fn()
            shutil.rmtree(out)
            shutil.rmtree(work / "cache", ignore_errors=True)
            os.sync()  # each case starts with no dirty pages left by the one before
            time.sleep(0.5)
            if r > 0:  # round 0 warms page cache and allocator
                results[name].append((seconds, rss, cpu))
    return results


def bench_resume(work: Path, server, pub: Path, size: int, sig: str) -> dict[str, float]:
    cache = work / f"cache-resume-{sig}"
    env = dict(os.environ, PACKWRAP_CACHE_DIR=str(cache), PACKWRAP_SIGNIFY_DIR=str(work / "none"))
    argv = [
        PACKWRAP,
        "fetch-iso",
        "--release",
        "7.6",
        "--mirror",
        server.url,
        "--signify-key",
        str(pub),
        "--quiet",
    ]
    before = server.bytes_sent(ISO)
    server.add_rule(ISO, Rule(stall_at=size // 2, stall_seconds=60, times=1))
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        parts = lambda: list((cache / "media" / "partial").rglob("*.part"))  # noqa: E731
        ok = wait_for(lambda: any(p.stat().st_size >= size // 2 for p in parts()), 60)
        if not ok:
            raise SystemExit("resume bench: the partial file never reached 50 %")
        proc.send_signal(getattr(signal, f"SIG{sig}"))
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    kept = parts()[0].stat().st_size
    seconds, rss, _ = run_child(argv, env=env)
    refetched = server.bytes_sent(ISO) - before - size
    shutil.rmtree(cache, ignore_errors=True)
    return {"kept": kept, "refetched": refetched, "seconds": seconds, "rss": rss}


def report(size_mib: int, rounds: int, results: dict[str, list], resume: dict) -> None:
    med = {k: statistics.median(r[0] for r in v) for k, v in results.items()}
    low = {k: min(r[0] for r in v) for k, v in results.items()}
    rss = {k: max(r[1] for r in v) for k, v in results.items()}
    cpu = {k: statistics.median(r[2] for r in v) for k, v in results.items()}
    load = os.getloadavg()[0]
    print(
        f"fetch + verify of {size_mib} MiB over loopback, {rounds} rounds (+1 warm-up), "
        f"{os.cpu_count()} CPUs, load average at the end {load:.1f}"
    )
    print(f"{'':24} {'median s':>9} {'min s':>7} {'MiB/s':>7} {'cpu s':>6} {'peak RSS':>9}")
    for k in results:
        print(
            f"{k:24} {med[k]:9.3f} {low[k]:7.3f} {size_mib / med[k]:7.0f} {cpu[k]:6.2f} "
            f"{rss[k] / 1024:5.1f} MiB"
        )
    pw, curl, naive = med["packwrap fetch-iso"], med["curl -o"], med["curl -o && sha256sum"]
    pw_min, curl_min = low["packwrap fetch-iso"], low["curl -o"]
    naive_min = low["curl -o && sha256sum"]
    print()
    print(
        f"packwrap / curl -o               = {pw / curl:.2f} median, {pw_min / curl_min:.2f} min"
        "  (target <= 1.25)"
    )
    print(
        f"packwrap / (curl -o + sha256sum) = {pw / naive:.2f} median, "
        f"{pw_min / naive_min:.2f} min  (target <= 0.50)"
    )
    # Paired per round (the cases of one round run back to back, under the same load).
    pw_runs = [r[0] for r in results["packwrap fetch-iso"]]
    paired = [p / c[0] for p, c in zip(pw_runs, results["curl -o"], strict=True)]
    paired_naive = [p / c[0] for p, c in zip(pw_runs, results["curl -o && sha256sum"], strict=True)]
    print(
        f"paired per round: packwrap / curl -o = {statistics.median(paired):.2f} median "
        f"({', '.join(f'{x:.2f}' for x in paired)}); "
        f"packwrap / (curl + sha256sum) = {statistics.median(paired_naive):.2f} median"
    )
    fixed = med["packwrap, 1 KiB file"]
    print(f"(packwrap - its fixed cost {fixed:.3f} s) / curl -o = {(pw - fixed) / curl:.2f} median")
    pw_cpu, curl_cpu, naive_cpu = (
        cpu["packwrap fetch-iso"],
        cpu["curl -o"],
        cpu["curl -o && sha256sum"],
    )
    print(
        f"CPU seconds: packwrap {pw_cpu:.2f}, curl -o {curl_cpu:.2f}, "
        f"curl -o + sha256sum {naive_cpu:.2f}"
    )
    pw_rss = rss["packwrap fetch-iso"] / 1024
    print(f"packwrap peak RSS                = {pw_rss:.1f} MiB  (target <= 80)")
    for sig, r in resume.items():
        print(
            f"resume after SIG{sig} at 50 %: partial kept {r['kept'] / 2**20:.1f} MiB, "
            f"re-fetched {r['refetched']} bytes (target <= 1 MiB), "
            f"resume run {r['seconds']:.2f} s, RSS {r['rss'] / 1024:.1f} MiB"
        )


if __name__ == "__main__":
    main()
