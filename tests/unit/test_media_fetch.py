"""fetch-iso's flow against a real loopback mirror (tests/mirror_support.py).

Keys and SHA256.sig are made by the real signify-openbsd at test time. Each test
runs in well under a second: small files, short timeouts, tiny backoff.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

from packwrap.errors import Cancelled, PackwrapError
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

pytestmark = pytest.mark.skipif(SIGNIFY is None, reason="signify-openbsd not installed")

SIZE = 4 << 20
CHUNK = 256 << 10
ISO = "/7.6/amd64/install76.iso"
PROXY_VARS = [v for n in ("http", "https", "all") for v in (f"{n}_proxy", f"{n.upper()}_PROXY")]
FAST = dl.Options(
    connect_timeout=10,
    read_timeout=10,
    attempts=3,
    backoff=0.01,
    max_backoff=0.05,
    chunk_size=CHUNK,
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"), "openbsd-76-base")


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("other"), "openbsd-76-base")


@pytest.fixture(autouse=True)
def no_host_or_pinned_keys(monkeypatch, tmp_path):
    """Tests decide the key: no /etc/signify, no blueprint-pinned key."""
    monkeypatch.setenv("PACKWRAP_SIGNIFY_DIR", str(tmp_path / "no-such-signify-dir"))
    for var in PROXY_VARS:  # loopback only: never through a proxy a CI box may set
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(keys_mod, "pinned_key_path", lambda release: None)


@pytest.fixture
def mirror(tmp_path, keys):
    return build_mirror(tmp_path / "mirror", {"install76.iso": SIZE, "bsd.rd": 64 << 10}, keys=keys)


@pytest.fixture
def server(mirror):
    with serve(mirror.root) as s:
        yield s


class Recorder:
    """A Progress that records notes (and can interrupt like Ctrl-C)."""

    def __init__(self, interrupt_after: int | None = None):
        self.notes: list[str] = []
        self.done = 0
        self.interrupt_after = interrupt_after

    def start(self, name, total, done):
        self.done = done

    def advance(self, n):
        self.done += n
        if self.interrupt_after is not None and self.done >= self.interrupt_after:
            raise KeyboardInterrupt

    def note(self, message):
        self.notes.append(message)

    def finish(self):
        pass


def run(tmp_path, mirrors, *, options=FAST, progress=None, **kw) -> FetchResult:
    kw.setdefault("release", "7.6")
    req = FetchRequest(mirrors=list(mirrors), **kw)
    return fetch(req, cache=MediaCache(tmp_path / "cache"), options=options, progress=progress)


def media_files(tmp_path) -> list[Path]:
    root = tmp_path / "cache" / "media" / "sha256"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def partials(tmp_path) -> list[Path]:
    root = tmp_path / "cache" / "media" / "partial"
    return sorted(root.rglob("*.part")) if root.exists() else []


def assert_nothing_left(tmp_path, out: Path | None = None) -> None:
    assert media_files(tmp_path) == []
    if out is not None:
        assert not (out / "install76.iso").exists()


# --------------------------------------------------------------------------- success paths


def test_success_signify_hard_link_and_message(tmp_path, mirror, server, keys):
    out = tmp_path / "iso"
    result = run(tmp_path, [server.url], signify_key=keys.pub, output=out)
    good = mirror.sha256("install76.iso")
    assert result.how == (
        f"signify: openbsd-76-base.pub, key {keys.keynum} -> SHA256 -> install76.iso OK"
    )
    assert result.path == out / "install76.iso"
    assert result.sha256 == good and result.iso_checksum == f"sha256:{good}"
    assert sha256_hex(result.path.read_bytes()) == good
    # No extra copy: the output is the cached file itself (hard link).
    assert result.cache_path == tmp_path / "cache/media/sha256" / good / "install76.iso"
    assert os.stat(result.path).st_ino == os.stat(result.cache_path).st_ino
    assert partials(tmp_path) == []
    assert server.bytes_sent(ISO) == SIZE


def test_cache_hit_uses_no_network(tmp_path, mirror, server, keys):
    run(tmp_path, [server.url], signify_key=keys.pub)
    server.stop()  # any request now fails: the second fetch must not make one
    out = tmp_path / "second"
    result = run(tmp_path, [server.url], signify_key=keys.pub, output=out)
    assert result.from_cache
    assert result.bytes_fetched == 0
    assert sha256_hex((out / "install76.iso").read_bytes()) == mirror.sha256("install76.iso")


def test_corrupted_cache_copy_is_fetched_again(tmp_path, mirror, server, keys):
    first = run(tmp_path, [server.url], signify_key=keys.pub)
    os.chmod(first.cache_path, 0o644)
    with open(first.cache_path, "r+b") as f:
        f.write(b"X")
    second = run(tmp_path, [server.url], signify_key=keys.pub)
    assert not second.from_cache
    assert sha256_hex(second.cache_path.read_bytes()) == mirror.sha256("install76.iso")
    assert server.bytes_sent(ISO) == 2 * SIZE


def test_resume_after_cut_halfway_refetches_little(tmp_path, mirror, server, keys):
    server.add_rule(ISO, Rule(cut_at=SIZE // 2, times=1))
    result = run(tmp_path, [server.url], signify_key=keys.pub)
    reqs = server.requests_for(ISO)
    assert len(reqs) == 2
    assert reqs[1].status == 206 and reqs[1].range == f"bytes={SIZE // 2}-"
    assert reqs[1].if_range  # validated resume
    refetched = server.bytes_sent(ISO) - SIZE
    assert refetched < SIZE // 10 + CHUNK
    assert sha256_hex(result.cache_path.read_bytes()) == mirror.sha256("install76.iso")


def test_resume_in_a_later_run(tmp_path, mirror, server, keys):
    server.add_rule(ISO, Rule(cut_at=SIZE // 2))
    one_try = dl.Options(**{**FAST.__dict__, "attempts": 1})
    with pytest.raises(PackwrapError, match="connection dropped"):
        run(tmp_path, [server.url], signify_key=keys.pub, options=one_try)
    [part] = partials(tmp_path)
    assert part.stat().st_size == SIZE // 2
    assert_nothing_left(tmp_path)
    server.clear_rules()
    result = run(tmp_path, [server.url], signify_key=keys.pub)
    assert result.resumed_from == SIZE // 2
    assert server.requests_for(ISO)[-1].range == f"bytes={SIZE // 2}-"
    assert server.bytes_sent(ISO) == SIZE  # not one byte twice
    assert partials(tmp_path) == []


def test_server_ignoring_range_means_start_over(tmp_path, mirror, server, keys):
    server.add_rule(ISO, Rule(cut_at=SIZE // 2, times=1))
    server.add_rule(ISO, Rule(ignore_range=True, times=1))
    result = run(tmp_path, [server.url], signify_key=keys.pub)
    reqs = server.requests_for(ISO)
    assert [r.status for r in reqs] == [200, 200]
    assert reqs[1].range is not None  # we asked to resume, the server sent it all
    assert sha256_hex(result.cache_path.read_bytes()) == mirror.sha256("install76.iso")


def test_changed_file_means_start_over_not_splice(tmp_path, mirror, server, keys):
    good = mirror.path("install76.iso").read_bytes()
    bad = deterministic_bytes(SIZE, "stale")
    replace_file(mirror.path("install76.iso"), bad)  # the mirror serves a stale copy...
    server.add_rule(ISO, Rule(cut_at=SIZE // 2, times=1))
    # ...then is updated to the signed one before we resume.
    server.add_rule(
        ISO, Rule(times=1, before=lambda: replace_file(mirror.path("install76.iso"), good))
    )
    result = run(tmp_path, [server.url], signify_key=keys.pub)
    reqs = server.requests_for(ISO)
    assert reqs[1].if_range and reqs[1].status == 200  # If-Range did not match
    assert result.cache_path.read_bytes() == good


def test_without_validators_a_splice_is_caught_by_the_checksum(tmp_path, mirror, keys):
    good = mirror.path("install76.iso").read_bytes()
    replace_file(mirror.path("install76.iso"), deterministic_bytes(SIZE, "stale"))
    with serve(mirror.root, use_etag=False, use_last_modified=False) as server:
        server.add_rule(ISO, Rule(cut_at=SIZE // 2, times=1))
        server.add_rule(
            ISO, Rule(times=1, before=lambda: replace_file(mirror.path("install76.iso"), good))
        )
        progress = Recorder()
        result = run(tmp_path, [server.url], signify_key=keys.pub, progress=progress)
        statuses = [(r.status, r.range) for r in server.requests_for(ISO)]
    assert statuses == [(200, None), (206, f"bytes={SIZE // 2}-"), (200, None)]
    assert any("checksum mismatch after a resume" in n for n in progress.notes)
    assert result.cache_path.read_bytes() == good


def test_stall_read_timeout_then_resume(tmp_path, mirror, server, keys):
    server.add_rule(ISO, Rule(stall_at=SIZE // 2, stall_seconds=5, times=1))
    opts = dl.Options(**{**FAST.__dict__, "read_timeout": 0.5})
    progress = Recorder()
    result = run(tmp_path, [server.url], signify_key=keys.pub, options=opts, progress=progress)
    assert any("read timeout" in n for n in progress.notes)
    assert result.resumed_from == 0
    assert sha256_hex(result.cache_path.read_bytes()) == mirror.sha256("install76.iso")


def _closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def test_mirror_fallback(tmp_path, mirror, server, keys):
    down = _closed_port_url()
    empty = server.url + "/empty"  # a live mirror without the release: 404
    progress = Recorder()
    slow = dl.Options(**{**FAST.__dict__, "backoff": 5.0, "max_backoff": 5.0})
    result = run(
        tmp_path, [down, empty, server.url], signify_key=keys.pub, options=slow, progress=progress
    )
    assert result.url == server.url + ISO
    # Nothing listens on `down`: no retry, no back-off pause, straight to the next mirror.
    assert not any("retrying" in n for n in progress.notes), progress.notes
    server.wait_idle()
    assert [r.path for r in server.log if r.status == 404] == [
        "/empty/7.6/amd64/SHA256.sig",
        "/empty/7.6/amd64/install76.iso",
    ]


def test_mirror_fallback_continues_the_partial(tmp_path, mirror, keys):
    """A drop on mirror A, retries exhausted; mirror B continues from the partial file."""
    with serve(mirror.root) as a, serve(mirror.root) as b:
        a.add_rule(ISO, Rule(cut_at=SIZE // 2))
        result = run(tmp_path, [a.url, b.url], signify_key=keys.pub)
        assert b.requests_for(ISO)[0].range == f"bytes={SIZE // 2}-"
        assert b.bytes_sent(ISO) == SIZE - SIZE // 2
    assert sha256_hex(result.cache_path.read_bytes()) == mirror.sha256("install76.iso")


def test_two_fetches_of_one_file_do_not_collide(tmp_path, mirror, server, keys):
    server.add_rule(ISO, Rule(stall_at=SIZE // 2, stall_seconds=0.7, times=1))
    results: dict[str, FetchResult | BaseException] = {}
    progress_b = Recorder()

    def worker(name, progress):
        try:
            results[name] = run(tmp_path, [server.url], signify_key=keys.pub, progress=progress)
        except BaseException as exc:  # surfaced by the asserts below
            results[name] = exc

    a = threading.Thread(target=worker, args=("a", Recorder()))
    a.start()
    assert wait_for(lambda: bool(partials(tmp_path)) and partials(tmp_path)[0].stat().st_size)
    b = threading.Thread(target=worker, args=("b", progress_b))
    b.start()
    a.join(10)
    b.join(10)
    assert isinstance(results["a"], FetchResult) and not results["a"].from_cache
    assert isinstance(results["b"], FetchResult) and results["b"].from_cache
    assert any("waiting for another packwrap" in n for n in progress_b.notes)
    assert len(server.requests_for(ISO)) == 1


def test_interrupt_keeps_partial_for_resume(tmp_path, mirror, server, keys):
    out = tmp_path / "out"
    with pytest.raises(Cancelled, match="partial download kept for resume") as info:
        run(
            tmp_path,
            [server.url],
            signify_key=keys.pub,
            output=out,
            progress=Recorder(interrupt_after=SIZE // 2),
        )
    assert info.value.exit_code == 130
    [part] = partials(tmp_path)
    assert SIZE // 2 <= part.stat().st_size < SIZE
    assert_nothing_left(tmp_path, out)
    kept = part.stat().st_size  # every byte received before the interrupt
    result = run(tmp_path, [server.url], signify_key=keys.pub, output=out)
    assert result.resumed_from == kept
    assert wait_for(lambda: len(server.requests_for(ISO)) == 2)
    resumed = server.requests_for(ISO)[1]
    assert resumed.range == f"bytes={kept}-" and resumed.bytes_sent == SIZE - kept
    assert sha256_hex(result.path.read_bytes()) == mirror.sha256("install76.iso")


# --------------------------------------------------------------------------- failures


def test_checksum_mismatch(tmp_path, mirror, server, keys):
    expected = mirror.sha256("install76.iso")
    replace_file(mirror.path("install76.iso"), deterministic_bytes(SIZE, "evil"))
    actual = mirror.sha256("install76.iso")
    out = tmp_path / "out"
    with pytest.raises(PackwrapError) as info:
        run(tmp_path, [server.url], signify_key=keys.pub, output=out)
    msg = str(info.value)
    assert "checksum mismatch for install76.iso" in msg
    assert f"expected sha256:{expected}, got sha256:{actual}" in msg
    assert_nothing_left(tmp_path, out)
    assert partials(tmp_path) == []


def test_bad_signature(tmp_path, mirror, server, keys):
    sig = mirror.path("SHA256.sig")
    data = bytearray(sig.read_bytes())
    data[-10] ^= 1  # inside the signed message
    sig.write_bytes(bytes(data))
    with pytest.raises(PackwrapError, match="signature verification failed"):
        run(tmp_path, [server.url], signify_key=keys.pub, output=tmp_path / "out")
    assert server.requests_for(ISO) == []  # nothing is downloaded on a bad list
    assert_nothing_left(tmp_path, tmp_path / "out")


def test_wrong_key(tmp_path, mirror, server, other_keys):
    with pytest.raises(PackwrapError, match="checked against wrong key"):
        run(tmp_path, [server.url], signify_key=other_keys.pub)
    assert server.requests_for(ISO) == []


def test_file_missing_from_sha256(tmp_path, mirror, server, keys):
    mirror.path("cd76.iso").write_bytes(b"unsigned")
    with pytest.raises(PackwrapError, match="cd76.iso is not listed in the signed SHA256"):
        run(tmp_path, [server.url], signify_key=keys.pub, filename="cd76.iso")


def test_404_on_every_mirror_lists_them(tmp_path, mirror, server, keys):
    server.add_rule(ISO, Rule(status=404))
    alt = server.url + "/alt"
    shutil.copytree(mirror.root / "7.6", mirror.root / "alt" / "7.6")
    server.add_rule("/alt" + ISO, Rule(status=404))
    with pytest.raises(PackwrapError) as info:
        run(tmp_path, [server.url, alt], signify_key=keys.pub)
    msg = str(info.value)
    assert msg.startswith("could not download install76.iso from any mirror")
    assert f"{server.url}{ISO}: HTTP 404" in msg and f"{alt}{ISO}: HTTP 404" in msg
    assert_nothing_left(tmp_path)


def test_500_on_every_mirror_retries_then_lists_them(tmp_path, mirror, server, keys):
    shutil.copytree(mirror.root / "7.6", mirror.root / "alt" / "7.6")
    server.add_rule(ISO, Rule(status=500))
    server.add_rule("/alt" + ISO, Rule(status=500))
    with pytest.raises(PackwrapError) as info:
        run(tmp_path, [server.url, server.url + "/alt"], signify_key=keys.pub)
    msg = str(info.value)
    assert msg.count("HTTP 500") == 2 and msg.count("after 3 attempts") == 2
    assert wait_for(lambda: len(server.requests_for("/alt" + ISO)) == 3)
    assert len(server.requests_for(ISO)) == 3


def test_html_error_page_with_200(tmp_path, mirror, server, keys):
    server.add_rule(ISO, Rule(html=True))
    with pytest.raises(PackwrapError, match="HTML page"):
        run(tmp_path, [server.url], signify_key=keys.pub, output=tmp_path / "out")
    assert_nothing_left(tmp_path, tmp_path / "out")


def test_html_page_sniffed_without_content_type(tmp_path, mirror, server, keys):
    page = b"  <!DOCTYPE html><html><body>Mirror maintenance</body></html>\n"
    mirror.path("install76.iso").write_bytes(page)
    mirror.resign()  # even a "signed" HTML page is refused before hashing matters
    with pytest.raises(PackwrapError, match="HTML page instead of the file"):
        run(tmp_path, [server.url], signify_key=keys.pub)
    assert_nothing_left(tmp_path)


def test_drop_every_time_fails_after_retries(tmp_path, mirror, server, keys):
    server.add_rule(ISO, Rule(cut_at=SIZE // 2))
    with pytest.raises(PackwrapError) as info:
        run(tmp_path, [server.url], signify_key=keys.pub)
    msg = str(info.value)
    assert "connection dropped at 2.0 MiB of 4.0 MiB" in msg and "after 3 attempts" in msg
    assert len(server.requests_for(ISO)) == 3
    assert [p.stat().st_size for p in partials(tmp_path)] == [SIZE // 2]  # kept for resume
    assert_nothing_left(tmp_path)


# --------------------------------------------------------------------------- keys and checksums


def test_no_key_refuses(tmp_path, mirror, server):
    with pytest.raises(PackwrapError, match="no signify key for OpenBSD 7.6"):
        run(tmp_path, [server.url])
    server.wait_idle()
    assert server.log == []


def test_host_key_is_used(tmp_path, mirror, server, keys, monkeypatch):
    host = tmp_path / "etc-signify"
    host.mkdir()
    shutil.copy(keys.pub, host / "openbsd-76-base.pub")
    monkeypatch.setenv("PACKWRAP_SIGNIFY_DIR", str(host))
    result = run(tmp_path, [server.url])
    assert result.how.startswith("signify: openbsd-76-base.pub")


def test_insecure_unsigned_says_so(tmp_path, mirror, server):
    result = run(tmp_path, [server.url], insecure_unsigned=True)
    assert "UNSIGNED" in result.how
    assert any("UNSIGNED" in w for w in result.warnings)
    assert server.requests_for("/7.6/amd64/SHA256")


def test_insecure_unsigned_list_is_cached(tmp_path, mirror, server):
    first = run(tmp_path, [server.url], insecure_unsigned=True)
    assert not first.from_cache
    assert (tmp_path / "cache" / "media" / "lists" / "7.6" / "amd64" / "SHA256").is_file()
    server.stop()  # the second fetch must need no network at all
    second = run(tmp_path, [server.url], insecure_unsigned=True, output=tmp_path / "out")
    assert second.from_cache and second.bytes_fetched == 0
    assert "UNSIGNED" in second.how and any("UNSIGNED" in w for w in second.warnings)
    assert (tmp_path / "out" / "install76.iso").read_bytes() == mirror.path(
        "install76.iso"
    ).read_bytes()


def test_cached_unsigned_list_is_never_used_for_a_signed_fetch(tmp_path, mirror, server, keys):
    run(tmp_path, [server.url], insecure_unsigned=True)
    server.stop()
    # With a key, only a signed SHA256.sig is accepted: none is cached, the network is gone.
    with pytest.raises(PackwrapError, match="SHA256.sig"):
        run(tmp_path, [server.url], signify_key=keys.pub)


def test_checksum_option_skips_signify_and_says_so(tmp_path, mirror, server):
    good = mirror.sha256("install76.iso")
    result = run(tmp_path, [server.url], checksum=f"sha256:{good}")
    assert result.how == f"checksum: sha256:{good} (--checksum) -> install76.iso OK"
    assert any("signify was not used" in w for w in result.warnings)
    assert server.requests_for("/7.6/amd64/SHA256.sig") == []


def test_non_openbsd_media_with_packer_checksum_forms(tmp_path, mirror, server):
    base = server.url + "/7.6/amd64"
    md5 = __import__("hashlib").md5(mirror.path("bsd.rd").read_bytes()).hexdigest()
    r1 = run(tmp_path, [base], release=None, filename="bsd.rd", checksum=f"file:{base}/SHA256")
    assert r1.sha256 == mirror.sha256("bsd.rd")
    server.stop()
    # An md5 known from the first download? No: a different sum -> looked up via by-md5
    # only after a download with it; this one hits the cache through its sha256 path.
    r2 = run(tmp_path, [base], release=None, filename="bsd.rd", checksum=r1.iso_checksum)
    assert r2.from_cache
    with pytest.raises(PackwrapError, match="could not download"):
        run(tmp_path, [base], release=None, filename="bsd.rd", checksum=md5)


def test_checksum_none_warns(tmp_path, mirror, server):
    result = run(
        tmp_path, [server.url + "/7.6/amd64"], release=None, filename="bsd.rd", checksum="none"
    )
    assert "NOT verified" in result.how
    assert result.sha256 == mirror.sha256("bsd.rd")


def test_md5_checksum_is_indexed_for_the_cache(tmp_path, mirror, server):
    base = server.url + "/7.6/amd64"
    md5 = __import__("hashlib").md5(mirror.path("bsd.rd").read_bytes()).hexdigest()
    run(tmp_path, [base], release=None, filename="bsd.rd", checksum=f"md5:{md5}")
    server.stop()
    again = run(tmp_path, [base], release=None, filename="bsd.rd", checksum=md5)
    assert again.from_cache


# --------------------------------------------------------------------------- output


def test_existing_different_output_needs_force(tmp_path, mirror, server, keys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "install76.iso").write_bytes(b"my own file")
    with pytest.raises(PackwrapError, match="use --force"):
        run(tmp_path, [server.url], signify_key=keys.pub, output=out)
    assert (out / "install76.iso").read_bytes() == b"my own file"
    result = run(tmp_path, [server.url], signify_key=keys.pub, output=out, force=True)
    assert os.stat(result.path).st_ino == os.stat(result.cache_path).st_ino


def test_output_on_another_file_system_is_copied(tmp_path, mirror, server, keys, monkeypatch):
    import errno

    from packwrap.media import fetch as fetch_mod

    def no_link(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def no_reflink(src, dst):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(fetch_mod.os, "link", no_link)
    monkeypatch.setattr(fetch_mod, "_reflink", no_reflink)
    out = tmp_path / "elsewhere"
    result = run(tmp_path, [server.url], signify_key=keys.pub, output=out)
    assert os.stat(result.path).st_ino != os.stat(result.cache_path).st_ino
    assert sha256_hex(result.path.read_bytes()) == mirror.sha256("install76.iso")
    assert [p.name for p in out.iterdir()] == ["install76.iso"]  # no temp file left
    # A second fetch finds the copy already verified there: nothing to replace.
    again = run(tmp_path, [server.url], signify_key=keys.pub, output=out)
    assert again.from_cache and again.path == result.path


def test_signed_list_is_cached_and_reverified(tmp_path, mirror, server, keys, other_keys):
    run(tmp_path, [server.url], signify_key=keys.pub)
    cached_list = tmp_path / "cache/media/lists/7.6/amd64/SHA256.sig"
    assert cached_list.read_bytes() == mirror.path("SHA256.sig").read_bytes()
    server.stop()
    # Another key does not accept the cached list: it needs the network, which is gone.
    with pytest.raises(PackwrapError, match="could not fetch SHA256.sig from any mirror"):
        run(tmp_path, [server.url], signify_key=other_keys.pub)


def test_checksum_file_on_disk(tmp_path, mirror, server):
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{mirror.sha256('bsd.rd')}  bsd.rd\n")
    base = server.url + "/7.6/amd64"
    result = run(tmp_path, [base], release=None, filename="bsd.rd", checksum=f"file:{sums}")
    assert result.how == f"checksum: sha256:{mirror.sha256('bsd.rd')} (--checksum) -> bsd.rd OK"
    with pytest.raises(PackwrapError, match="cannot read checksum file"):
        run(tmp_path, [base], release=None, filename="bsd.rd", checksum="file:/no/such/sums")
