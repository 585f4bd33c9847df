"""The build UI and state bag that step and runner tests share (fixtures `ui`, `state`
in tests/conftest.py; `make_state` for a state with a particular config)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packwrap.build.common_options import ALL_OPTIONS, CommonConfig
from packwrap.build.state import BuildOptions, State


class RecordingUi:
    """A build Ui that keeps what steps print, in order: `lines` has every say, message
    and error; `events` the same as (kind, text); `errors` the errors alone; `logs` what
    went to the build log only (packwrap.build.ui.log_line)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.logs: list[str] = []

    def say(self, message: str) -> None:
        self.events.append(("say", message))

    def message(self, message: str) -> None:
        self.events.append(("message", message))

    def error(self, message: str) -> None:
        self.events.append(("error", message))

    def log(self, message: str) -> None:
        self.logs.append(message)

    @property
    def lines(self) -> list[str]:
        return [text for _, text in self.events]

    @property
    def errors(self) -> list[str]:
        return [text for kind, text in self.events if kind == "error"]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def common_config(values: Mapping[str, Any]) -> CommonConfig:
    """The common options' defaults with `values` over them (unparsed, as given): what
    the core steps read through config_of(state). Not frozen: a test may add a key."""
    defaults = {option.name: option.default_value() for option in ALL_OPTIONS}
    return CommonConfig({**defaults, **values})


def make_state(
    config: Mapping[str, Any] | None = None,
    *,
    ui: Any = None,
    build: str = "qemu.t",
    template_dir: Path | None = None,
    force: bool = False,
    **options: Any,
) -> State:
    """A build's state: `build` is "<source type>.<name>"; `config` is used as given
    (a builder's prepared config, or a mapping -- a plain Config too -- of a few keys over
    the common options' defaults, since the core steps read a CommonConfig)."""
    source_type, _, name = build.partition(".")
    return State(
        build,
        source_type,
        name,
        config if isinstance(config, CommonConfig) else common_config(config or {}),
        RecordingUi() if ui is None else ui,
        options=BuildOptions(force=force, **options),
        **({} if template_dir is None else {"template_dir": template_dir}),
    )
