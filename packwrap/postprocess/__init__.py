"""Post-processors: what happens to a build's artifact afterwards (Packer's manifest,
checksum, shell-local and artifice; signify, OpenBSD's signed SHA256).

A post-processor declares a Schema and `run(config, artifact, ctx) -> (artifact, keep)`;
`run_chains` passes a build's artifact through each chain the way Packer's core does.
More post-processors register in the `packwrap.post_processors` entry-point group.
"""

from packwrap.postprocess.base import (
    PostProcessor,
    PPContext,
    UnsupportedPostProcessor,
    post_processor_for,
    prepare_chains,
    run_chains,
    unlock_chains,
)

__all__ = [
    "PPContext",
    "PostProcessor",
    "UnsupportedPostProcessor",
    "post_processor_for",
    "prepare_chains",
    "run_chains",
    "unlock_chains",
]
