"""The post-processor interface and Packer's chain semantics (core/build.go).

For each chain the builder's artifact goes through the post-processors in order;
each returns a new artifact and whether to keep its input. The builder's artifact
is kept when there are no post-processors or when the first post-processor of any
chain keeps it; an intermediate artifact is listed only when the next one keeps
it; the last artifact of each chain is always listed. (packwrap never destroys
files of dropped artifacts: it only leaves them out of the list.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from packwrap.config.schema import BOOL, Config, ConfigError, Option, Problem, Schema
from packwrap.errors import Cancelled, PackwrapError

if TYPE_CHECKING:
    from packwrap.build.artifact import Artifact
    from packwrap.build.ui import Ui
    from packwrap.template.model import BlockSpec

ENTRY_POINT_GROUP = "packwrap.post_processors"

#: Keys every post-processor block accepts (handled here, not by the post-processor).
COMMON_OPTIONS = [
    Option("keep_input_artifact", BOOL, None),
    Option("name", default=None),
    Option("only", "any", None),
    Option("except", "any", None),
]


class PostProcessorConfig(Config):
    """The keys above that the chain reads, typed (a post-processor reads its own)."""

    keep_input_artifact: bool | None
    name: str | None


@dataclass
class PPContext:
    """What a post-processor knows about the build (Packer's packer_* config keys)."""

    build_name: str  # packer_build_name: the source name ("openbsd-76")
    builder_type: str  # packer_builder_type ("qemu")
    full_name: str  # "qemu.openbsd-76", for messages
    run_uuid: str
    ui: Ui
    force: bool = False
    cwd: Path = field(default_factory=Path.cwd)
    #: The build's cancel event (SIGINT/SIGTERM): checked before each post-processor;
    #: long ones (checksum) check it while they work.
    cancel_event: threading.Event = field(default_factory=threading.Event)

    def check_cancelled(self, what: str) -> None:
        if self.cancel_event.is_set():
            raise Cancelled(f"interrupted during {what}")


class PostProcessor(Protocol):
    type_name: ClassVar[str]
    schema: ClassVar[Schema[Config]]
    #: True when the input artifact must be kept whatever keep_input_artifact says.
    force_keep: ClassVar[bool]

    def run(self, config: Config, artifact: Artifact, ctx: PPContext) -> tuple[Artifact, bool]:
        """The new artifact and whether the input artifact is kept by default."""
        ...


def _builtin() -> dict[str, Callable[[], Any]]:
    from packwrap.postprocess.checksum import ChecksumPostProcessor
    from packwrap.postprocess.compress import CompressPostProcessor
    from packwrap.postprocess.manifest import ManifestPostProcessor
    from packwrap.postprocess.signify import SignifyPostProcessor
    from packwrap.postprocess.vagrant import VagrantPostProcessor
    from packwrap.postprocess.vmdk import VmdkPostProcessor

    return {
        "manifest": ManifestPostProcessor,
        "checksum": ChecksumPostProcessor,
        "signify": SignifyPostProcessor,
        "compress": CompressPostProcessor,
        "vagrant": VagrantPostProcessor,
        "vmdk": VmdkPostProcessor,
    }


def post_processor_for(type_name: str) -> Any | None:
    """An instance of the post-processor for this type, or None."""
    builtin = _builtin()
    if type_name in builtin:
        return builtin[type_name]()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == type_name:
            return ep.load()()
    return None


@dataclass
class PreparedPP:
    type: str
    impl: Any
    config: PostProcessorConfig
    keep_input_artifact: bool | None

    @property
    def title(self) -> str:
        """How the build names it: the type, or `name (type TYPE)` for a named block, as
        Packer does for a legacy JSON template (its HCL output leaves the name empty)."""
        name = self.config.name
        return f"{name} (type {self.type})" if name and name != self.type else self.type


def _prepare(impl: Any, block: BlockSpec) -> tuple[PostProcessorConfig, list[Problem]]:
    schema = impl.schema.extend(COMMON_OPTIONS)
    if not issubclass(schema.config_type, PostProcessorConfig):
        schema.config_type = PostProcessorConfig  # the post-processor has no typed config
    config, found, _warnings = schema.prepare(block.body)
    if not isinstance(config, PostProcessorConfig):
        raise TypeError(f"expected a PostProcessorConfig, got {type(config).__name__}")
    return config, found


def prepare_chains(chains: list[list[BlockSpec]]) -> list[list[PreparedPP]]:
    """Prepare every post-processor's config; ConfigError lists every problem."""
    problems = []
    out: list[list[PreparedPP]] = []
    for chain in chains:
        prepared: list[PreparedPP] = []
        for block in chain:
            impl = post_processor_for(block.type)
            if impl is None:
                raise PackwrapError(
                    f"post-processor {block.type!r} is not supported by packwrap "
                    f"(supported: {', '.join(_builtin())})",
                    file=block.body.file,
                    line=block.body.line,
                )
            config, found = _prepare(impl, block)
            problems.extend(found)
            prepared.append(PreparedPP(block.type, impl, config, config.keep_input_artifact))
        out.append(prepared)
    if problems:
        raise ConfigError(problems)
    return out


def unlock_chains(
    chains: list[list[PreparedPP]],
    env: Mapping[str, str],
    prompt: Callable[[str], str | None] | None = None,
) -> None:
    """Let each post-processor that signs unlock its key before the builds start (it may
    ask for a passphrase: better now, while the user is there, than after the install).
    Each question is asked once, however many builds sign with the same key."""
    from packwrap.postprocess.signify import terminal_prompt

    ask = prompt or terminal_prompt
    answers: dict[str, str | None] = {}

    def ask_once(text: str) -> str | None:
        if text not in answers:
            answers[text] = ask(text)
        return answers[text]

    for chain in chains:
        for pp in chain:
            unlock = getattr(pp.impl, "unlock", None)
            if unlock is not None:
                unlock(pp.config, env, ask_once)


def run_chains(
    chains: list[list[PreparedPP]], artifact: Artifact, ctx: PPContext
) -> list[Artifact]:
    """Artifacts to report, in Packer's order (the builder's first when kept)."""
    results: list[Artifact] = []
    keep_original = not chains
    for chain in chains:
        prior = artifact
        for i, pp in enumerate(chain):
            ctx.check_cancelled(f"post-processor {pp.type!r}")
            ctx.ui.say(f"Running post-processor: {pp.title}")
            new, keep = pp.impl.run(pp.config, prior, ctx)
            if pp.keep_input_artifact is not None and not (
                keep and getattr(pp.impl, "force_keep", False)
            ):
                keep = pp.keep_input_artifact
            if i == 0:
                keep_original = keep_original or keep
            elif keep:
                results.append(prior)
            prior = new
        results.append(prior)
    if keep_original:
        results.insert(0, artifact)
    return results
