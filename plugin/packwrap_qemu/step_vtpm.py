"""Start swtpm for an emulated TPM (Packer's stepCreatevTPM): one swtpm per build, its
state in a private directory, ended by its pid in cleanup."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.sdk import PackwrapError, Step
from packwrap_qemu import qemu
from packwrap_qemu.config import config_of

if TYPE_CHECKING:
    from packwrap.sdk import State


class StepStartVtpm(Step):
    name = "start vTPM"

    def __init__(self) -> None:
        self.tmp: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def run(self, state: State) -> None:
        config = config_of(state)
        if not config.vtpm:
            return
        self.tmp = tempfile.mkdtemp(prefix="packwrap-vtpm-")
        sock = Path(self.tmp) / "vtpm.sock"
        version = "1.2" if config.use_tpm1 else "2.0"
        state.ui.say(f"Starting swtpm (TPM {version})")
        self.proc = qemu.driver(state).start_swtpm(Path(self.tmp), sock, tpm1=config.use_tpm1)
        # -on-error=abort keeps it for the QEMU left running: say how to end it
        state.data.setdefault("cleanup_hints", []).extend(
            [
                f"swtpm (pid {self.proc.pid}) may still be running: kill {self.proc.pid}",
                f"its TPM state: rm -r {self.tmp}",
            ]
        )
        deadline = time.monotonic() + 10
        while not sock.exists():  # QEMU connects at start: the socket must be there
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (Path(self.tmp) / "swtpm.log").read_text(errors="replace").strip()
                raise PackwrapError(f"swtpm failed to start: {log.splitlines()[-1:] or 'timeout'}")
            state.sleep(0.02)
        state.data["tpm_socket"] = sock
        state.ui.message(f"swtpm pid {self.proc.pid}, state in {self.tmp}")

    def cleanup(self, state: State) -> None:
        state.data.pop("tpm_socket", None)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
