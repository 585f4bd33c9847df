"""Small parts of fetch-iso: cache paths, locks, the threaded hasher, the partial file,
progress lines, project variables, key lookup."""

from __future__ import annotations

import hashlib
import io
import signal
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from packwrap.errors import PackwrapError, UsageError
from packwrap.media import download as download_mod
from packwrap.media import keys as keys_mod
from packwrap.media.cache import MediaCache, cache_root, check_filename, job_key
from packwrap.media.checksums import Checksum
from packwrap.media.download import WRITE_SLICE, _content_range, _Partial, looks_like_html
from packwrap.media.hashing import StreamHasher
from packwrap.media.progress import LogProgress
from packwrap.media.project import _parse_variables, find_project


def test_cache_root_precedence(tmp_path):
    assert cache_root({"PACKWRAP_CACHE_DIR": str(tmp_path / "p")}) == tmp_path / "p"
    assert cache_root({"XDG_CACHE_HOME": str(tmp_path / "x")}) == tmp_path / "x" / "packwrap"
    # A relative XDG_CACHE_HOME is invalid per the XDG spec: ignored.
    assert cache_root({"XDG_CACHE_HOME": "rel", "HOME": str(tmp_path)}).name == "packwrap"
    assert cache_root({"XDG_CACHE_HOME": "rel"}).parent.name == ".cache"


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", ".hidden", "", "x\n", "a b"])
def test_unsafe_file_names(name):
    with pytest.raises(PackwrapError):
        check_filename(name)


def test_safe_file_names():
    for name in ("install76.iso", "miniroot76.img", "bsd.rd", "base76.tgz", "SHA256"):
        assert check_filename(name) == name


def test_job_key():
    assert job_key(Checksum("sha256", "a" * 64), "u") == "sha256-" + "a" * 64
    assert job_key(None, "http://x/a.iso").startswith("url-")
    assert job_key(None, "http://x/a.iso") != job_key(None, "http://x/b.iso")


def test_lock_is_exclusive_and_reports_waiting(tmp_path):
    cache = MediaCache(tmp_path)
    events: list[str] = []
    with cache.lock("job"):
        waited = threading.Event()

        def second():
            with cache.lock("job", on_wait=lambda p: waited.set()):
                events.append("second")

        t = threading.Thread(target=second)
        t.start()
        assert waited.wait(5)
        time.sleep(0.05)
        events.append("first done")
    t.join(5)
    assert events == ["first done", "second"]


@given(
    st.lists(st.integers(min_value=0, max_value=200_000), max_size=12),
    st.booleans(),
    st.sampled_from([(2, 8), (5, 2), (8, 4)]),
)
def test_stream_hasher_equals_hashlib(sizes, pooled, pool):
    """Any pool size and batch size: the digests are hashlib's (batches, flushes, sync)."""
    chunks = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    buffers, batch = pool
    with StreamHasher(
        ["sha256", "md5"], chunk_size=200_000, buffers=buffers, batch=batch
    ) as hasher:
        for c in chunks:
            if pooled:  # the download path: fill a pool buffer, hand it over
                buf = hasher.buffer()
                buf[: len(c)] = c
                hasher.submit(buf, len(c))
            else:
                hasher.update(c)
        got = hasher.hexdigests()
    data = b"".join(chunks)
    assert got == {"sha256": hashlib.sha256(data).hexdigest(), "md5": hashlib.md5(data).hexdigest()}


def test_stream_hasher_batches_wake_the_worker_less():
    """64 chunks with batch 8: the worker gets 8 hand-overs, not 64."""
    hasher = StreamHasher(["sha256"], chunk_size=1024, buffers=16, batch=8)
    handed = []

    class Recording:
        def __init__(self, q):
            self.q = q

        def put(self, item):
            handed.append(item)
            self.q.put(item)

        def get(self):
            return self.q.get()

    hasher._work = Recording(hasher._work)  # type: ignore[assignment]
    data = b""
    for i in range(64):
        buf = hasher.buffer()
        buf[:] = bytes([i]) * 1024
        data += bytes(buf)
        hasher.submit(buf, 1024)
    assert hasher.hexdigests()["sha256"] == hashlib.sha256(data).hexdigest()
    hasher.close()
    assert [len(b) for b in handed if isinstance(b, list)] == [8] * 8


def test_the_hash_worker_leaves_ctrl_c_to_the_main_thread():
    """The kernel gives a process-directed SIGINT to a thread that does not block it: the
    worker blocks it, so the main thread's blocking read is the one interrupted."""
    hasher = StreamHasher(["sha256"], chunk_size=1024, buffers=4, batch=1)
    hasher.submit(hasher.buffer(), 1024)
    hasher.sync()  # the worker has run
    assert hasher._thread is not None
    status = Path(f"/proc/self/task/{hasher._thread.native_id}/status").read_text()
    blocked = int(next(ln for ln in status.splitlines() if ln.startswith("SigBlk:")).split()[1], 16)
    hasher.close()
    assert blocked & (1 << (signal.SIGINT - 1)) and blocked & (1 << (signal.SIGTERM - 1))


def test_ctrl_c_anywhere_in_the_producer_never_hangs_close():
    """KeyboardInterrupt at each call, line and return of the producer's code (and of the
    threading code it calls) in turn: close() always finishes. With a Condition shared by
    both threads, an interrupt on the return of its __enter__ left the lock held and the
    worker and close() blocked for good (a Ctrl-C of fetch-iso that hung under load)."""
    import sys

    import packwrap.media.hashing as hashing_mod

    traced = {hashing_mod.__file__, threading.__file__}
    k = 0
    while True:
        k += 1
        hasher = StreamHasher(["sha256"], chunk_size=1024, buffers=4, batch=2)
        hasher.release(hasher.buffer())  # the worker runs before the interrupts start
        seen = 0

        def interrupt_at_k(frame, event, arg, k=k):
            nonlocal seen
            if frame.f_code.co_filename in traced:
                seen += 1
                if seen == k:
                    raise KeyboardInterrupt
            return interrupt_at_k

        interrupted = False
        sys.settrace(interrupt_at_k)
        try:
            for _ in range(6):
                hasher.submit(hasher.buffer(), 1024)
            hasher.sync()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            sys.settrace(None)
        closer = threading.Thread(target=hasher.close, daemon=True)
        closer.start()
        closer.join(5)
        assert not closer.is_alive(), f"close() hangs after an interrupt at trace event {k}"
        if not interrupted:
            break  # k passed the last event: every point was tried
    assert k > 20


class _TruncateSpy:
    """A real file object that records truncate() calls."""

    def __init__(self, fh):
        self._fh, self.truncated = fh, []

    def truncate(self, size=None):
        self.truncated.append(size)
        return self._fh.truncate(size)

    def __getattr__(self, name):
        return getattr(self._fh, name)


def _spy_on_open(mocker) -> list[_TruncateSpy]:
    opened: list[_TruncateSpy] = []

    def spying_open(*args, **kwargs):
        opened.append(_TruncateSpy(open(*args, **kwargs)))  # noqa: SIM115
        return opened[-1]

    mocker.patch.object(download_mod, "open", spying_open, create=True)
    return opened


def test_partial_fresh_file_is_written_without_truncate(tmp_path, mocker):
    # ext4 flushes a file to disk on close after it was truncated (auto_da_alloc):
    # a fresh download must not pay for that.
    opened = _spy_on_open(mocker)
    part = _Partial(tmp_path / "f.part", ["sha256"], chunk_size=64 << 10)
    data = bytes(range(256)) * 1000
    part.append(data)
    part.close()
    part.hasher.close()
    assert [f.truncated for f in opened] == [[]]
    assert (tmp_path / "f.part").read_bytes() == data
    assert part.digests() == {"sha256": hashlib.sha256(data).hexdigest()}


def test_partial_cuts_bytes_past_what_was_hashed(tmp_path, mocker):
    part = _Partial(tmp_path / "f.part", ["sha256"], chunk_size=64 << 10)
    part.append(b"a" * 1000)
    part.close()
    with open(tmp_path / "f.part", "ab") as f:
        f.write(b"torn write")  # bytes no hash has seen (a write cut by an error)
    opened = _spy_on_open(mocker)
    part.append(b"b" * (WRITE_SLICE + 5))
    part.close()
    part.hasher.close()
    assert [f.truncated for f in opened] == [[1000]]
    data = b"a" * 1000 + b"b" * (WRITE_SLICE + 5)
    assert (tmp_path / "f.part").read_bytes() == data
    assert part.digests() == {"sha256": hashlib.sha256(data).hexdigest()}


def test_partial_reset_removes_the_files(tmp_path):
    part = _Partial(tmp_path / "f.part", ["sha256"])
    part.append(b"x" * 10)
    part.meta_path.write_text("{}")
    part.reset()
    assert not part.path.exists() and not part.meta_path.exists() and part.size == 0
    part.append(b"y")
    part.close()
    part.hasher.close()
    assert part.path.read_bytes() == b"y"
    assert part.digests() == {"sha256": hashlib.sha256(b"y").hexdigest()}


def test_content_range():
    assert _content_range("bytes 100-199/1000") == (100, 199, 1000)
    assert _content_range("bytes 0-9/*") == (0, 9, None)
    assert _content_range("items 1-2/3") is None
    assert _content_range("bytes x-y/z") is None


def test_html_sniffing():
    assert looks_like_html(b"\n  <!DOCTYPE HTML PUBLIC ...")
    assert looks_like_html(b"<html><body>")
    assert not looks_like_html(b"\x00\x01CD001")
    assert not looks_like_html(b"untrusted comment: verify with openbsd-76-base.pub\n")


def test_log_progress_is_sparse():
    out = io.StringIO()
    p = LogProgress(out, min_gap=0.0)
    p.start("install76.iso", 100 << 20, 0)
    for _ in range(100):
        p.advance(1 << 20)
    p.finish()
    lines = out.getvalue().splitlines()
    assert lines[0] == "downloading install76.iso (100.0 MiB)"
    assert len(lines) == 5  # start, 25 %, 50 %, 75 %, done
    assert " 25% of 100.0 MiB, " in lines[1] and "/s, ETA " in lines[1]


def test_log_progress_resume_line():
    out = io.StringIO()
    p = LogProgress(out)
    p.start("x.iso", 4 << 20, 2 << 20)
    assert out.getvalue() == "downloading x.iso (4.0 MiB, resuming at 2.0 MiB)\n"


def test_release_tag_and_key_name():
    assert keys_mod.release_tag("7.6") == "76"
    assert keys_mod.key_file_name("10.0") == "openbsd-100-base.pub"
    # snapshots: the release under development's number, from its release data
    assert keys_mod.key_file_name("snapshots") == "openbsd-81-base.pub"
    with pytest.raises(UsageError):
        keys_mod.release_tag("current")


def test_key_order(tmp_path, monkeypatch):
    host = tmp_path / "etc"
    host.mkdir()
    pinned = tmp_path / "pinned.pub"
    pinned.write_text("x")
    monkeypatch.setattr(keys_mod, "pinned_key_path", lambda release: pinned)
    env = {"PACKWRAP_SIGNIFY_DIR": str(host)}
    assert keys_mod.find_key("7.6", None, env).origin == "blueprint"
    (host / "openbsd-76-base.pub").write_text("x")
    assert keys_mod.find_key("7.6", None, env).origin == "host"
    assert keys_mod.find_key("7.6", pinned, env).origin == "--signify-key"
    with pytest.raises(UsageError, match="no such file"):
        keys_mod.find_key("7.6", tmp_path / "missing.pub", env)


def test_pinned_key_hook_looks_in_the_blueprint(tmp_path, monkeypatch):
    (tmp_path / "openbsd" / "keys").mkdir(parents=True)
    key = tmp_path / "openbsd" / "keys" / "openbsd-76-base.pub"
    key.write_text("x")
    monkeypatch.setattr(keys_mod, "_blueprint_roots", lambda: [tmp_path / "nope", tmp_path])
    assert keys_mod.pinned_key_path("7.6") == key
    assert keys_mod.pinned_key_path("7.5") is None


def test_project_variables_fallback_parser(tmp_path):
    t = tmp_path / "a.pkr.hcl"
    t.write_text(
        'variable "release" {\n  default = "7.5"\n}\n'
        'variable "mirror" {\n  default = ["http://a", "http://b"]\n}\n'
        'variable "unrelated" {\n  default = "x"\n}\n'
    )
    v = tmp_path / "a.auto.pkrvars.hcl"
    v.write_text('release = "7.6"\niso_file = "miniroot76.img"\n')
    assert _parse_variables([t], [v]) == {
        "release": "7.6",
        "mirror": ["http://a", "http://b"],
        "iso_file": "miniroot76.img",
    }


def test_find_project_needs_both_kinds_of_file(tmp_path):
    assert find_project(tmp_path) is None
    (tmp_path / "a.pkr.hcl").write_text('variable "release" {\n  default = "7.6"\n}\n')
    assert find_project(tmp_path) is None
    (tmp_path / "b.auto.pkrvars.hcl").write_text('arch = "arm64"\n')
    (tmp_path / "c.auto.pkrvars.hcl").write_text('release = "7.6"\n')
    project = find_project(tmp_path)  # the template cannot load (no build): parsed directly
    assert project.release == "7.6" and project.arch == "arm64"
    assert project.vars_file == Path(tmp_path / "c.auto.pkrvars.hcl")  # the one with release
