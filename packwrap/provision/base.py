"""What every provisioner is: a schema for its block and a run over a communicator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from packwrap.config.schema import DURATION, LIST, Config, Option

if TYPE_CHECKING:
    import threading

    from packwrap.communicator.base import Communicator
    from packwrap.config import Schema

#: Options every provisioner block accepts (Packer's only, except and pause_before),
#: read by the provision step (packwrap/provision/step.py), not by the provisioner.
COMMON_OPTIONS = [
    Option("only", LIST),
    Option("except", LIST),
    Option("pause_before", DURATION, help="Wait this long before the provisioner runs."),
]


class ProvisionerConfig(Config):
    """A provisioner block's prepared options: the common ones typed here, each
    provisioner's own read by the provisioner."""

    only: list[str] | None
    pause_before: float | None

    @property
    def excluded(self) -> list[str]:
        """The `except` option (a Python keyword, so not an attribute)."""
        return [str(name) for name in self.get("except") or []]


@dataclass
class ProvisionContext:
    communicator: Communicator
    template_dir: Path
    say: Callable[[str], None]  # headline
    output: Callable[[str], None]  # streamed guest output
    cancel: threading.Event
    interactive: bool  # a terminal to pause on (breakpoint)


class Provisioner(Protocol):
    type_name: ClassVar[str]
    schema: ClassVar[Schema[ProvisionerConfig]]

    def __init__(self, config: Config) -> None: ...

    def provision(self, ctx: ProvisionContext) -> None:
        """Raise PackwrapError on failure (exit code and output tail in the message)."""
