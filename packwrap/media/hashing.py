"""Hash a byte stream on a worker thread, so hashing overlaps the network and disk I/O.

hashlib releases the GIL for large buffers, so a SHA-256 of one chunk runs while the
main thread receives and writes the next. Chunks travel in a pool of reusable buffers
(`buffer()` / `submit()`): no allocation per chunk, so no page-fault churn and a fixed
memory footprint (`buffers` x `chunk_size`).

Chunks are handed over in batches (`batch` chunks, or sooner when the producer runs out
of free buffers): hashing is faster than the network, so a worker woken per chunk would
sleep and wake ~2,000 times for 512 MiB. On a 2-core VM each of those wake-ups (futex,
GIL hand-off, a cross-CPU interrupt) cost enough to make the whole transfer 1.5x slower
with twice the CPU time (bench/README.md). `sync()` flushes the batch and waits until
everything handed over has been hashed, which keeps "bytes hashed" equal to "bytes
written" whenever the caller looks.

The two threads share only SimpleQueues (C-level, never held by Python code): Ctrl-C
raises KeyboardInterrupt at any bytecode of the producer, and one raised inside a
Python-level lock's __enter__ (threading.Condition's) left that lock held, the worker
blocked on it and close()'s join waiting forever -- a hung Ctrl-C under load. The worker
also blocks SIGINT and SIGTERM: the kernel may hand a process signal to any thread that
does not block it, and one taken by the worker left the main thread asleep in recv() on a
stalled mirror until the stall ended (Python runs handlers in the main thread only).
"""

from __future__ import annotations

import hashlib
import queue
import signal
import threading

_Item = tuple["bytes | bytearray", int]
WORKER_BLOCKS = {signal.SIGINT, signal.SIGTERM}  # the main thread's, to interrupt its I/O


class _Sync:
    """A marker in the work queue: the worker hands it back when it gets there."""


class StreamHasher:
    def __init__(
        self, algos: list[str], chunk_size: int = 256 << 10, buffers: int = 32, batch: int = 8
    ):
        self._hashes = {a: hashlib.new(a) for a in algos}
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        pool = [bytearray(chunk_size) for _ in range(buffers)]
        self._pool_ids = {id(b) for b in pool}
        for b in pool:
            self._free.put(b)
        self._batch: list[_Item] = []
        self._batch_size = max(1, min(batch, buffers // 2))  # two batches fit in the pool
        # Batches of (buffer or bytes, length); a _Sync token is echoed back on _synced
        # once everything before it is hashed; None stops the worker.
        self._work: queue.SimpleQueue[list[_Item] | _Sync | None] = queue.SimpleQueue()
        self._synced: queue.SimpleQueue[_Sync] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- producer side (one thread)
    def buffer(self) -> bytearray:
        """A free buffer to fill; blocks while all of them wait to be hashed."""
        self._start()
        try:
            return self._free.get_nowait()
        except queue.Empty:
            self._flush()  # the buffers we wait for may sit in our own batch
            return self._free.get()

    def release(self, buf: bytearray) -> None:
        """Give back a buffer that was not submitted (nothing read into it)."""
        self._free.put(buf)

    def submit(self, buf: bytes | bytearray, n: int) -> None:
        """Hash the first n bytes of buf (a pool buffer returns to the pool after).

        A buffer from outside the pool must not change until sync(): bytes are safe."""
        self._start()
        self._batch.append((buf, n))
        if len(self._batch) >= self._batch_size:
            self._flush()

    def update(self, data: bytes) -> None:
        self.submit(data, len(data))

    def _flush(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        self._work.put(batch)

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hash", daemon=True)
            self._thread.start()

    # -- worker
    def _run(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_BLOCKS)
        hashes = list(self._hashes.values())
        while (batch := self._work.get()) is not None:
            if isinstance(batch, _Sync):
                self._synced.put(batch)
                continue
            for buf, n in batch:
                try:
                    if self._error is None:
                        with memoryview(buf)[:n] as view:
                            for h in hashes:
                                h.update(view)
                except BaseException as exc:  # reported by sync()
                    self._error = exc
                finally:
                    if isinstance(buf, bytearray) and id(buf) in self._pool_ids:
                        self._free.put(buf)

    def sync(self) -> None:
        self._flush()
        if self._thread is not None:
            token = _Sync()
            self._work.put(token)
            while self._synced.get() is not token:  # an older sync's, cut short by Ctrl-C
                pass
        if self._error is not None:
            raise self._error

    def hexdigests(self) -> dict[str, str]:
        self.sync()
        return {a: h.hexdigest() for a, h in self._hashes.items()}

    def close(self) -> None:
        if self._thread is not None:
            self._flush()
            self._work.put(None)
            self._thread.join()
            self._thread = None

    def __enter__(self) -> StreamHasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
