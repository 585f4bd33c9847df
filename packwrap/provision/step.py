"""StepProvision: run the build's provisioners in order over the communicator."""

from __future__ import annotations

import fnmatch
import sys
from typing import TYPE_CHECKING, Any

from packwrap.build.state import State, config_of
from packwrap.build.step import Step
from packwrap.config.schema import Schema
from packwrap.errors import PackwrapError
from packwrap.provision.base import COMMON_OPTIONS, ProvisionContext, ProvisionerConfig
from packwrap.provision.registry import provisioner_class

if TYPE_CHECKING:
    from packwrap.config.schema import Problem
    from packwrap.provision.base import Provisioner
    from packwrap.template.model import BlockSpec


def _applies(block_config: ProvisionerConfig, build_name: str) -> bool:
    names = {build_name, f"source.{build_name}"}
    only, exclude = block_config.only, block_config.excluded
    if only and not any(fnmatch.fnmatch(n, pat) for n in names for pat in only):
        return False
    return not (exclude and any(fnmatch.fnmatch(n, pat) for n in names for pat in exclude))


def _with_common_options(schema: Schema[Any]) -> Schema[ProvisionerConfig]:
    """The provisioner's schema as this step reads it: a provisioner declared without the
    common options or the typed config (a plugin's, or one written before them) gets both."""
    if issubclass(schema.config_type, ProvisionerConfig) and all(
        option.name in schema.options for option in COMMON_OPTIONS
    ):
        return schema
    missing = [option for option in COMMON_OPTIONS if option.name not in schema.options]
    return Schema([*schema.options.values(), *missing], schema.checks, ProvisionerConfig)


def prepare_provisioners(
    blocks: list[BlockSpec],
) -> list[tuple[BlockSpec, type[Provisioner], ProvisionerConfig]]:
    """Validate every provisioner block up front; ConfigError lists all problems."""
    from packwrap.config import ConfigError

    prepared: list[tuple[BlockSpec, type[Provisioner], ProvisionerConfig]] = []
    problems: list[Problem] = []
    for block in blocks:
        cls = provisioner_class(block.type, file=block.body.file, line=block.body.line)
        config, found, _warnings = _with_common_options(cls.schema).prepare(block.body)
        problems.extend(found)
        prepared.append((block, cls, config))
    if problems:
        raise ConfigError(problems)
    return prepared


class StepCheckProvisioners(Step):
    """Builders run this first: a mistake in a provisioner block fails the build before
    the install (which may take long), with every problem and its file:line."""

    name = "check provisioners"

    def run(self, state: State) -> None:
        if state.provisioners:
            prepare_provisioners(state.provisioners)


class StepProvision(Step):
    name = "provision"

    def run(self, state: State) -> None:
        if not state.provisioners:
            return
        comm = state.data.get("communicator")
        if comm is None:
            if config_of(state).communicator == "none":
                state.ui.say("Communicator none: provisioners skipped")
                return
            raise PackwrapError("provisioners need a communicator, but none is connected")
        ctx = ProvisionContext(
            communicator=comm,
            template_dir=state.template_dir,
            say=state.ui.say,
            output=state.ui.message,
            cancel=state.cancel_event,
            interactive=sys.stdin is not None and sys.stdin.isatty(),
        )
        for _block, cls, config in prepare_provisioners(state.provisioners):
            state.check_cancelled()
            if not _applies(config, state.build_name):
                continue
            if config.pause_before:
                state.sleep(config.pause_before)
            cls(config).provision(ctx)
