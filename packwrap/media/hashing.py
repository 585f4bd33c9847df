"""Hash a byte stream on a worker thread, so hashing overlaps the network and disk I/O.

hashlib releases the GIL for large buffers, so a SHA-256 of one chunk runs while the
main thread receives and writes the next. The queue is bounded (memory stays at a few
chunks). `sync()` waits until every chunk handed over has been hashed, which keeps
"bytes hashed" equal to "bytes written" whenever the caller looks.
"""

from __future__ import annotations

import hashlib
import queue
import threading

_STOP = None


class StreamHasher:
    def __init__(self, algos: list[str], max_pending: int = 8, threaded: bool = True):
        self._hashes = {a: hashlib.new(a) for a in algos}
        self._threaded = threaded
        self._queue: queue.Queue[bytes | None] = queue.Queue(max_pending)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def update(self, data: bytes) -> None:
        if not self._threaded or len(data) < 64 << 10:
            self.sync()  # keep the order: small chunks are hashed here, after the queue
            for h in self._hashes.values():
                h.update(data)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hash", daemon=True)
            self._thread.start()
        self._queue.put(data)

    def _run(self) -> None:
        hashes = list(self._hashes.values())
        while True:
            data = self._queue.get()
            try:
                if data is _STOP:
                    return
                if self._error is None:
                    for h in hashes:
                        h.update(data)
            except BaseException as exc:  # reported by sync()
                self._error = exc
            finally:
                self._queue.task_done()

    def sync(self) -> None:
        if self._thread is not None:
            self._queue.join()
        if self._error is not None:
            raise self._error

    def hexdigests(self) -> dict[str, str]:
        self.sync()
        return {a: h.hexdigest() for a, h in self._hashes.items()}

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def __enter__(self) -> StreamHasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
