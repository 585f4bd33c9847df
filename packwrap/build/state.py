"""The state shared by a build's steps (multistep's StateBag, typed where it matters)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packwrap.errors import Cancelled

if TYPE_CHECKING:
    from packwrap.build.artifact import Artifact
    from packwrap.build.ui import Ui
    from packwrap.config import Config


@dataclass
class BuildOptions:
    """Packer's build flags that steps care about."""

    force: bool = False
    force_install: bool = False  # -force-install: install even when a cached install fits
    on_error: str = "cleanup"  # cleanup | abort | ask
    debug: bool = False
    timestamp_ui: bool = False
    machine_readable: bool = False


class StateBag(dict):
    """The state bag; remembers the last serial console put in it, so the build can show
    the console's last lines in an error even after the console step's cleanup removed it."""

    last_console: Any = None

    def __setitem__(self, key: str, value: Any) -> None:
        if key == "console" and value is not None:
            self.last_console = value
        super().__setitem__(key, value)


@dataclass
class State:
    build_name: str  # "qemu.openbsd-76" (Packer's <type>.<name>)
    source_type: str
    source_name: str
    config: Config
    ui: Ui
    options: BuildOptions = field(default_factory=BuildOptions)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    template_dir: Path = field(default_factory=Path.cwd)
    #: Provisioner blocks of the build, evaluated (type, body, file, line).
    provisioners: list[Any] = field(default_factory=list)
    #: The state bag proper: http_ip, http_port, disk_path, vm, console, ...
    data: dict[str, Any] = field(default_factory=StateBag)
    artifact: Artifact | None = None
    halted: bool = False  # a step failed
    error: BaseException | None = None
    current_step: str | None = None

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    @property
    def failed(self) -> bool:
        """True when cleanups should treat their work as a partial result to remove."""
        return self.halted or self.cancelled

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled(f"interrupted during {self.current_step or 'build'}")

    def sleep(self, seconds: float) -> None:
        """Sleep that wakes at once on Ctrl-C/SIGTERM and raises Cancelled."""
        if self.cancel_event.wait(max(0.0, seconds)):
            self.check_cancelled()

    def deadline(self, seconds: float) -> float:
        return time.monotonic() + seconds
