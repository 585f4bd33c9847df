"""StepLocalSets: serve the release's cached sets from the build's own HTTP server.

For a project whose install.conf takes the sets over HTTP from the build itself
(sets_location = "http", sets_http_server empty: packwrap/autoinstall/sets_source.py),
the local mirror `packwrap fetch-iso --sets` laid out in the media cache
(packwrap/media/sets.py) is served as /pub/OpenBSD/<release>/<arch>/ next to the
docroot. Before the VM starts: a remote mirror on QEMU's hermetic network is refused
(lint and validate say the same with the line), and the mirror's SHA256.sig is checked
against the release key, so a mirror that does not verify is one line, not an installer
abort; the installer then verifies it again itself.
"""

from __future__ import annotations

from pathlib import Path

from packwrap.build.state import State
from packwrap.build.step import Step
from packwrap.errors import PackwrapError


class StepLocalSets(Step):
    name = "local sets"

    def run(self, state: State) -> None:
        from packwrap.autoinstall.sets_source import (
            remote_mirror,
            server_directory,
            serves_local_sets,
        )

        values = state.data.get("project_values") or {}
        mirror = remote_mirror(values)
        if mirror and state.config.get("hermetic_network"):
            raise PackwrapError(
                f"sets_http_server {mirror}: a remote mirror is unreachable on the hermetic "
                "network; leave sets_http_server empty (the build serves the sets `packwrap "
                "fetch-iso --sets` cached) or set hermetic_network = false"
            )
        if not serves_local_sets(values):
            return
        server = state.data.get("http_server")
        if server is None:
            raise PackwrapError(
                'sets_location = "http" from the build needs its HTTP server (http_directory)'
            )
        from packwrap.blueprint.record import read_record, resolve_release

        record = read_record(Path(state.template_dir))
        release = resolve_release(record=record, variables=values) or ""
        arch = (record.arch if record else None) or str(values.get("arch") or "amd64")
        directory = verified_mirror(release, arch)
        prefix = server_directory(release, arch)
        server.mounts[prefix] = directory
        state.ui.say(f"Sets for OpenBSD {release}/{arch} served as /{prefix}/ from {directory}")


def verified_mirror(release: str, arch: str, cache_dir: Path | None = None) -> Path:
    """The cached local mirror, its SHA256.sig verified with the release key."""
    from packwrap.media.cache import MediaCache
    from packwrap.media.keys import find_key, no_key_error
    from packwrap.media.sets import mirror_dir
    from packwrap.media.signify import load_public_key, verify_embedded

    if not release:
        raise PackwrapError("sets over HTTP from the build: the project names no release")
    directory = mirror_dir(MediaCache(cache_dir), release, arch)
    sig = directory / "SHA256.sig"
    if not sig.is_file():
        raise PackwrapError(
            f"the sets of OpenBSD {release}/{arch} are not in the cache ({directory}): run "
            "`packwrap fetch-iso --sets` in the project"
        )
    key_src = find_key(release, None)
    if key_src is None:
        raise no_key_error(release)
    verify_embedded(sig.read_bytes(), load_public_key(key_src.path), str(sig))
    return directory
