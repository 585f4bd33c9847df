"""fetch-iso under injected faults: after every fault the file is verified and complete,
or absent -- never partial, never spliced, never a temporary file in the output directory.

Every fault is real: a loopback mirror (tests/mirror_support.py, 127.0.0.1 only) that
stalls, drops the connection at seeded random offsets (FIN or RST), swaps the file between
two requests, lies about Content-Length; a subprocess under RLIMIT_FSIZE for a full disk;
two fetches of one file at once (threads and processes). Counts of injected faults and
survived scenarios are printed at the end (`-s`) and written to $PACKWRAP_FAULT_COUNTS.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import resource
import threading
from collections import Counter
from pathlib import Path

import pytest

from packwrap.errors import PackwrapError
from packwrap.media import download as dl
from packwrap.media import keys as keys_mod
from packwrap.media.cache import MediaCache
from packwrap.media.fetch import FetchRequest, FetchResult, fetch
from tests.mirror_support import (
    SIGNIFY,
    Rule,
    build_mirror,
    deterministic_bytes,
    make_keys,
    replace_file,
    serve,
    sha256_hex,
    wait_for,
)
from tests.packwrap_runner import run_cli, started

pytestmark = pytest.mark.skipif(SIGNIFY is None, reason="signify-openbsd not installed")

SIZE = 2 << 20
CHUNK = 64 << 10
ISO = "/7.6/amd64/install76.iso"
NAME = "install76.iso"
FAST = dl.Options(
    connect_timeout=5, read_timeout=5, attempts=4, backoff=0.01, max_backoff=0.05, chunk_size=CHUNK
)
PROXY_VARS = [v for n in ("http", "https", "all") for v in (f"{n}_proxy", f"{n.upper()}_PROXY")]

INJECTED: Counter[str] = Counter()  # fault kind -> faults the server really injected
SCENARIOS: Counter[str] = Counter()  # fault kind -> scenarios run
OUTCOMES: Counter[str] = Counter()  # "verified" / "absent"
LIE_OUTCOMES: dict[str, str] = {}  # Content-Length lie -> outcome


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    total = {
        "faults_injected": sum(INJECTED.values()),
        "scenarios": sum(SCENARIOS.values()),
        "survived": sum(OUTCOMES.values()),
        "by_kind": {k: {"injected": INJECTED[k], "scenarios": SCENARIOS[k]} for k in SCENARIOS},
        "outcomes": dict(OUTCOMES),
        "content_length_lies": LIE_OUTCOMES,
    }
    print(f"\ndownload faults: {json.dumps(total)}")
    if path := os.environ.get("PACKWRAP_FAULT_COUNTS"):
        Path(path).write_text(json.dumps(total, indent=1))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"), "openbsd-76-base")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("PACKWRAP_SIGNIFY_DIR", str(tmp_path / "no-such-signify-dir"))
    for var in PROXY_VARS:  # loopback only, never through a proxy
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(keys_mod, "pinned_key_path", lambda release: None)


@pytest.fixture
def mirror(tmp_path, keys):
    return build_mirror(tmp_path / "mirror", {NAME: SIZE}, keys=keys)


def inject(server, rule: Rule, kind: str, path: str = ISO) -> Rule:
    """Add a rule to the server and count each time it really fires."""
    take = rule.take

    def counting() -> bool:
        fired = take()
        if fired:
            INJECTED[kind] += 1
        return fired

    rule.take = counting  # type: ignore[method-assign]
    server.add_rule(path, rule)
    return rule


def attempt(tmp_path: Path, url: str, *, options=FAST, **kw) -> FetchResult | BaseException:
    kw.setdefault("release", "7.6")
    kw.setdefault("output", tmp_path / "out")
    try:
        return fetch(
            FetchRequest(mirrors=[url], **kw), cache=MediaCache(tmp_path / "cache"), options=options
        )
    except BaseException as exc:  # judged by check_outcome
        return exc


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_outcome(tmp_path: Path, outcome, expected_sha: str, kind: str) -> str:
    """The invariant after any fault: 'verified' (complete, right hash) or 'absent'."""
    SCENARIOS[kind] += 1
    out = tmp_path / "out"
    cache = tmp_path / "cache" / "media"
    in_out = sorted(p.name for p in out.iterdir()) if out.exists() else []
    # the cache keeps only verified files under their own hash; partials in their area
    for p in cache.rglob("*") if cache.exists() else []:
        if not p.is_file():
            continue
        rel = p.relative_to(cache).parts
        assert rel[0] in ("sha256", "partial", "locks", "lists", "index"), p
        if rel[0] == "sha256":
            assert _sha(p) == p.parent.name, f"unverified file in the cache: {p}"
        if p.name.endswith((".part", ".part.json")):
            assert rel[0] == "partial", p
    if isinstance(outcome, FetchResult):
        assert in_out == [NAME], in_out
        assert _sha(out / NAME) == expected_sha
        assert not list((cache / "partial").rglob("*.part")), "partial left after success"
        OUTCOMES["verified"] += 1
        return "verified"
    assert isinstance(outcome, PackwrapError), repr(outcome)
    text = str(outcome)
    assert text.strip() and "\n" not in text
    assert in_out == [], in_out  # nothing, not even a temporary file
    OUTCOMES["absent"] += 1
    return "absent"


# --------------------------------------------------------------------------- stalls


@pytest.mark.parametrize("offset", [0, CHUNK + 17, SIZE // 2, SIZE - 1])
def test_stall_read_timeout_retry_verified(tmp_path, mirror, keys, offset):
    with serve(mirror.root) as server:
        inject(server, Rule(stall_at=offset, stall_seconds=5, times=1), "stall")
        opts = dl.Options(**{**FAST.__dict__, "read_timeout": 0.3})
        outcome = attempt(tmp_path, server.url, signify_key=keys.pub, options=opts)
    assert check_outcome(tmp_path, outcome, mirror.sha256(NAME), "stall") == "verified"


def test_stall_forever_fails_cleanly(tmp_path, mirror, keys):
    with serve(mirror.root) as server:
        inject(server, Rule(stall_at=SIZE // 3, stall_seconds=30), "stall")
        opts = dl.Options(**{**FAST.__dict__, "read_timeout": 0.3, "attempts": 3})
        outcome = attempt(tmp_path, server.url, signify_key=keys.pub, options=opts)
    assert check_outcome(tmp_path, outcome, mirror.sha256(NAME), "stall") == "absent"
    assert "timed out" in str(outcome) or "timeout" in str(outcome)


# --------------------------------------------------------------------------- drops


@pytest.mark.parametrize("seed", range(8))
def test_drops_at_random_offsets_resume_verified(tmp_path, mirror, keys, seed):
    rng = random.Random(seed)
    offsets = sorted(rng.sample(range(1, SIZE), rng.randint(1, 3)))
    with serve(mirror.root) as server:
        for off in offsets:
            inject(server, Rule(cut_at=off, cut_reset=rng.random() < 0.5, times=1), "drop")
        outcome = attempt(tmp_path, server.url, signify_key=keys.pub)
        reqs = server.requests_for(ISO)
    assert check_outcome(tmp_path, outcome, mirror.sha256(NAME), "drop") == "verified"
    # each drop costs one more request, and every resume is honoured (206), never restarted;
    # bytes sent can exceed the file: an RST drop discards what the client had not read yet
    assert len(reqs) == len(offsets) + 1
    assert all(r.status == 206 for r in reqs[1:] if r.range)


def test_drop_every_time_fails_cleanly(tmp_path, mirror, keys):
    with serve(mirror.root) as server:
        inject(server, Rule(cut_at=SIZE // 3), "drop")
        outcome = attempt(tmp_path, server.url, signify_key=keys.pub)
    assert check_outcome(tmp_path, outcome, mirror.sha256(NAME), "drop") == "absent"


# --------------------------------------------------------------------------- file changes


@pytest.mark.parametrize(
    "etag,last_modified", [(True, True), (True, False), (False, True), (False, False)]
)
def test_different_file_on_resume_restarts_never_splices(
    tmp_path, mirror, keys, etag, last_modified
):
    """The first request gets the old file (cut halfway); the mirror then swaps in a new
    file, which is the one the checksum expects. Splicing old + new would fail the
    checksum: the result must be exactly the new file."""
    path = mirror.path(NAME)
    new = deterministic_bytes(SIZE, "the new file")
    with serve(mirror.root, use_etag=etag, use_last_modified=last_modified) as server:
        inject(server, Rule(cut_at=SIZE // 2, times=1), "changed-on-resume")
        inject(server, Rule(before=lambda: replace_file(path, new), times=1), "changed-on-resume")
        outcome = attempt(tmp_path, server.url, checksum=f"sha256:{sha256_hex(new)}")
        reqs = server.requests_for(ISO)
    assert check_outcome(tmp_path, outcome, sha256_hex(new), "changed-on-resume") == "verified"
    if etag:
        assert reqs[1].if_range and reqs[1].status == 200  # If-Range refused: whole new file
    # Last-Modified alone has a 1 s resolution: a file swapped within the same second
    # still matches If-Range, the resume splices, and the checksum is what catches it
    # (then one whole download). Either way the result above is the new file, whole.


def test_file_changed_to_something_unexpected_fails_cleanly(tmp_path, mirror, keys):
    path = mirror.path(NAME)
    expected = mirror.sha256(NAME)  # the signed SHA256 names the old file
    with serve(mirror.root) as server:
        inject(server, Rule(cut_at=SIZE // 2, times=1), "changed-on-resume")
        swap = Rule(before=lambda: replace_file(path, deterministic_bytes(SIZE, "x")), times=1)
        inject(server, swap, "changed-on-resume")
        outcome = attempt(tmp_path, server.url, signify_key=keys.pub)
    assert check_outcome(tmp_path, outcome, expected, "changed-on-resume") == "absent"
    assert "checksum mismatch" in str(outcome)


# --------------------------------------------------------------------------- lies


LIES = {
    "shorter by 1000": lambda n: str(max(n - 1000, 0)),
    "half": lambda n: str(n // 2),
    "longer by 1000": lambda n: str(n + 1000),
    "double": lambda n: str(2 * n),
    "zero": lambda n: "0",
    "negative": lambda n: "-5",
    "superscript two": lambda n: "²",
    "5000 digits": lambda n: "9" * 5000,
    "not a number": lambda n: "lots",
    "two values": lambda n: f"{n}, {n + 1}",
}


@pytest.mark.parametrize("times", [1, -1], ids=["once", "always"])
@pytest.mark.parametrize("lie", list(LIES))
def test_lying_content_length(tmp_path, mirror, keys, lie, times):
    with serve(mirror.root) as server:
        inject(server, Rule(content_length=LIES[lie], times=times), "content-length")
        outcome = attempt(tmp_path, server.url, signify_key=keys.pub)
    result = check_outcome(tmp_path, outcome, mirror.sha256(NAME), "content-length")
    LIE_OUTCOMES[f"{lie} ({'once' if times == 1 else 'always'})"] = result
    if times == 1 and lie in ("longer by 1000", "double", "superscript two", "5000 digits"):
        # a body shorter than announced is a drop: resumed, then verified
        assert result == "verified"


# --------------------------------------------------------------------------- disk full


def _limit_file_size(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def _cli_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PACKWRAP_CACHE_DIR"] = str(tmp_path / "cache")
    env["PACKWRAP_SIGNIFY_DIR"] = str(tmp_path / "no-such-signify-dir")
    env.pop("XDG_CACHE_HOME", None)
    for var in PROXY_VARS:
        env.pop(var, None)
    return env


def _fetch_args(url: str, key: Path, out: Path) -> list[str]:
    return ["fetch-iso", "--release", "7.6", "--mirror", url, "--signify-key", str(key),
            "--output", str(out)]  # fmt: skip


@pytest.mark.parametrize("limit", [0, 100, CHUNK, SIZE // 2, SIZE - 1, SIZE + (1 << 20)])
def test_disk_full(tmp_path, mirror, keys, limit):
    with serve(mirror.root) as server:
        p = run_cli(
            *_fetch_args(server.url, keys.pub, tmp_path / "out"),
            env=_cli_env(tmp_path),
            preexec_fn=_limit_file_size(limit),
        )
    if limit < SIZE:
        INJECTED["disk-full"] += 1  # the limit above the file size is the control case
    outcome: FetchResult | PackwrapError
    if p.returncode == 0:
        outcome = FetchResult(tmp_path / "out" / NAME, tmp_path, "", "", False, [])
    else:
        assert p.returncode == 1, p.stderr
        lines = p.stderr.strip().splitlines()
        assert lines and lines[-1].startswith("Error: "), p.stderr  # one line, no traceback
        assert "Traceback" not in p.stderr
        outcome = PackwrapError(lines[-1])
    result = check_outcome(tmp_path, outcome, mirror.sha256(NAME), "disk-full")
    if limit < SIZE:
        assert result == "absent"
        assert "disk full" in p.stderr or "File too large" in p.stderr, p.stderr
    else:
        assert result == "verified"


# --------------------------------------------------------------------------- concurrency


@pytest.mark.parametrize("same_output", [True, False])
def test_two_concurrent_fetches_in_threads(tmp_path, mirror, keys, same_output):
    gate = threading.Event()
    outcomes: dict[str, object] = {}
    with serve(mirror.root) as server:
        inject(
            server, Rule(stall_at=SIZE // 2, stall_seconds=10, resume=gate, times=1), "concurrent"
        )

        def worker(name: str) -> None:
            out = tmp_path / ("out" if same_output or name == "a" else "out-b")
            outcomes[name] = attempt(tmp_path, server.url, signify_key=keys.pub, output=out)

        a = threading.Thread(target=worker, args=("a",))
        a.start()
        assert wait_for(lambda: any((tmp_path / "cache").rglob("*.part")))
        b = threading.Thread(target=worker, args=("b",))
        b.start()
        threading.Timer(0.3, gate.set).start()
        a.join(30)
        b.join(30)
        n_requests = len(server.requests_for(ISO))
    assert n_requests == 1  # the second waited for the first, then used its cached file
    expected = mirror.sha256(NAME)
    assert check_outcome(tmp_path, outcomes["a"], expected, "concurrent") == "verified"
    if not same_output:
        with contextlib.suppress(FileNotFoundError):
            (tmp_path / "out").rename(tmp_path / "out-a")
        (tmp_path / "out-b").rename(tmp_path / "out")
    assert check_outcome(tmp_path, outcomes["b"], expected, "concurrent") == "verified"


def test_two_concurrent_fetches_in_processes(tmp_path, mirror, keys):
    gate = threading.Event()
    env = _cli_env(tmp_path)
    with serve(mirror.root) as server:
        inject(
            server, Rule(stall_at=SIZE // 3, stall_seconds=10, resume=gate, times=1), "concurrent"
        )
        args = _fetch_args(server.url, keys.pub, tmp_path / "out")
        with contextlib.ExitStack() as running:  # each killed by its pid if still alive
            procs = [running.enter_context(started(*args, env=env))]
            assert wait_for(lambda: any((tmp_path / "cache").rglob("*.part")))
            procs.append(running.enter_context(started(*args, env=env)))
            threading.Timer(0.5, gate.set).start()
            results = [p.communicate(timeout=60) for p in procs]
        n_requests = len(server.requests_for(ISO))
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    assert n_requests == 1
    fake = FetchResult(tmp_path / "out" / NAME, tmp_path, "", "", False, [])
    assert check_outcome(tmp_path, fake, mirror.sha256(NAME), "concurrent") == "verified"
