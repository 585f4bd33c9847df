"""The `breakpoint` provisioner: pause the build so a human can look inside the guest."""

from __future__ import annotations

import sys
from typing import ClassVar

from packwrap.config import Config, Option, Schema
from packwrap.config.schema import BOOL, STRING
from packwrap.provision.base import COMMON_OPTIONS, ProvisionContext, ProvisionerConfig


class BreakpointProvisioner:
    type_name: ClassVar[str] = "breakpoint"
    schema: ClassVar[Schema[ProvisionerConfig]] = Schema(
        [
            Option("note", STRING, default=""),
            Option("disable", BOOL, default=False),
            *COMMON_OPTIONS,
        ],
        (),
        ProvisionerConfig,
    )

    def __init__(self, config: Config):
        self.config = config

    def provision(self, ctx: ProvisionContext) -> None:
        if self.config.disable:
            ctx.say("Breakpoint provisioner disabled, continuing")
            return
        note = f" with note: {self.config.note}" if self.config.note else ""
        if not ctx.interactive:
            ctx.say(f"Breakpoint{note} (not a terminal: continuing without pausing)")
            return
        ctx.say(f"Pausing at breakpoint provisioner{note}. Press enter to continue.")
        sys.stdin.readline()
