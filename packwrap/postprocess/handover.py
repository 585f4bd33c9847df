"""A build whose post-processor packwrap does not embed goes whole to a real `packer`.

It can when `packer` is on PATH, the build uses no post-processor only packwrap has
(signify, vmdk), and `packer validate` accepts the build as it is (packwrap-only builder
options, a builder plugin packer lacks: packer's own message says why). Otherwise the
post-processor is a problem at its file:line. `packwrap build`
(packwrap/build/session.py) and `packwrap validate` ask the same question here.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from typing import TYPE_CHECKING

from packwrap.postprocess.base import post_processor_for

if TYPE_CHECKING:
    from packwrap.template.cliargs import PackerFlags
    from packwrap.template.model import BlockSpec, BuildSpec

#: Post-processors only packwrap has: a build using one cannot be handed to packer.
PACKWRAP_ONLY = frozenset({"signify", "vmdk"})
VALIDATE_TIMEOUT = 60.0


def unembedded(chains: list[list[BlockSpec]]) -> list[BlockSpec]:
    """The post-processor blocks no packwrap module embeds."""
    return [b for chain in chains for b in chain if post_processor_for(b.type) is None]


def handover_blocker(build: BuildSpec, flags: PackerFlags, env: Mapping[str, str]) -> str | None:
    """Why this build cannot go to packer whole (None: it can)."""
    packer = shutil.which("packer", path=env.get("PATH"))
    if packer is None:
        return "`packer` is not on PATH to hand the build to: install Packer, or remove it"
    chains = build.post_processors
    only_here = sorted({b.type for chain in chains for b in chain if b.type in PACKWRAP_ONLY})
    if only_here:
        return (
            f"the build cannot be handed to packer: it also uses {', '.join(only_here)}, "
            "which only packwrap has"
        )
    return _packer_rejects(packer, build, flags, env)


def _packer_rejects(
    packer: str, build: BuildSpec, flags: PackerFlags, env: Mapping[str, str]
) -> str | None:
    """packer validate's complaint about this build (None: it accepts it)."""
    argv = [packer, "validate"]
    for kind, value in flags.settings:
        argv += ["-var", value] if kind == "var" else [f"-var-file={value}"]
    argv += [f"-only={build.name}", str(flags.path or ".")]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=VALIDATE_TIMEOUT,
            check=False,
            env=dict(env),
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`packer validate` could not check the build: {exc}"
    if done.returncode == 0:
        return None
    said = " ".join((done.stderr + done.stdout).replace("(source code not available)", "").split())
    return f"packer cannot take the build over: `packer validate` says: {said}"
