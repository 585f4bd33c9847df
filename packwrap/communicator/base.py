"""The communicator interface provisioners use (Packer's packersdk.Communicator, trimmed)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

OutputFn = Callable[[str], None]


class Communicator(Protocol):
    def run(
        self,
        command: str,
        *,
        on_output: OutputFn | None = None,
        cancel: threading.Event | None = None,
    ) -> int:
        """Run a shell command in the guest; stream output lines; return the exit status.
        When `cancel` is set while the command runs: stop waiting, raise Cancelled.

        Returns -1 when the connection dropped before an exit status arrived."""

    def upload(self, local: Path, remote: str) -> None:
        """Copy a file, or a directory recursively, to `remote` in the guest."""

    def close(self) -> None: ...
