"""The state shared by a build's steps (multistep's StateBag, typed where it matters)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from packwrap.errors import Cancelled

if TYPE_CHECKING:
    from packwrap.build.artifact import Artifact
    from packwrap.build.common_options import CommonConfig
    from packwrap.build.ui import Ui
    from packwrap.config.schema import Config

C = TypeVar("C", bound="Config")


@dataclass
class BuildOptions:
    """Packer's build flags that steps care about."""

    force: bool = False
    force_install: bool = False  # -force-install: install even when a cached install fits
    on_error: str = "cleanup"  # cleanup | abort | ask
    debug: bool = False
    timestamp_ui: bool = False
    machine_readable: bool = False


class StateBag(dict[str, Any]):
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

    def typed_config(self, config_type: type[C]) -> C:
        """The prepared config as the type its schema made (a builder's QemuConfig, ...),
        so a step reads typed attributes, never Any from a dict."""
        if not isinstance(self.config, config_type):
            raise TypeError(f"expected a {config_type.__name__}, got {type(self.config).__name__}")
        return self.config


@overload
def config_of(state: State) -> CommonConfig: ...
@overload
def config_of(state: State, config_type: type[C]) -> C: ...
def config_of(state: State, config_type: type[Config] | None = None) -> Config:
    """The build's typed config: the core steps read the common options
    (`config_of(state)`, a CommonConfig), a builder its own (`config_of(state, QemuConfig)`)."""
    if config_type is None:
        from packwrap.build.common_options import as_common_config

        return as_common_config(state.config)
    return state.typed_config(config_type)
