"""What every provisioner is: a schema for its block and a run over a communicator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    import threading

    from packwrap.communicator.base import Communicator
    from packwrap.config import Config, Schema


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
    schema: ClassVar[Schema]

    def __init__(self, config: Config) -> None: ...

    def provision(self, ctx: ProvisionContext) -> None:
        """Raise PackwrapError on failure (exit code and output tail in the message)."""
