"""build_record = true: /etc/packwrap-build in the image, and the same in the manifest.

Written over SSH after the provisioners (and syspatch), not through the site set: the
record holds the SHA256 of every site set and of the response file, which a site set
cannot hold of itself, and it is written only once the install really used them.
The manifest post-processor adds the same fields to its custom_data (state
"build_record", copied onto the artifact by the build session).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from packwrap.build.state import State, config_of
from packwrap.build.step import Step
from packwrap.errors import PackwrapError
from packwrap.media.checksums import file_digest

RECORD_PATH = "/etc/packwrap-build"
RESPONSE_FILE = "install.conf"


def _served(state: State, relative: str) -> Path | None:
    """The file the build's HTTP server served at /<relative> (overlay first)."""
    server = state.data.get("http_server")
    for root in getattr(server, "roots", None) or []:
        candidate = Path(root) / relative
        if candidate.is_file():
            return candidate
    return None


def _medium(state: State) -> tuple[str, str]:
    """(file name, SHA256) of the install medium the builder booted (state "iso_path",
    set by qemu's media step and vmm's install start); ("", "") without one."""
    path = state.data.get("iso_path")
    if not path or not Path(str(path)).is_file():
        return "", ""
    return Path(str(path)).name, file_digest(Path(str(path)), "sha256")


def _blueprint_and_release(state: State) -> tuple[str, str]:
    """From the project's .packwrap/project.json (empty for a hand-written template): the
    blueprint as `packwrap new` was given it (openbsd-76) and the release."""
    from packwrap.blueprint.record import read_record

    record = read_record(Path(state.template_dir))
    if record is None:
        return "", ""
    data = record.data
    return str(data.get("instance") or data.get("blueprint") or ""), record.release or ""


def _signify_key(release: str) -> str:
    """The key packwrap verifies this release's media with (packwrap/media/keys.py)."""
    if not release:
        return ""
    from packwrap.media.keys import find_key
    from packwrap.media.signify import load_public_key

    try:
        source = find_key(release, None)
        if source is None:
            return ""
        return f"{source.path.name} (keynum {load_public_key(source.path).keynum_hex})"
    except PackwrapError:
        return ""


def build_record(state: State, now: float | None = None) -> dict[str, str]:
    """The record's fields, in order (empty ones left out)."""
    from packwrap import __version__
    from packwrap.autoinstall.siteset import SITE_SUBDIR

    blueprint, release = _blueprint_and_release(state)
    medium, medium_sha = _medium(state)
    fields = {
        "packwrap_version": __version__,
        "blueprint": blueprint,
        "release": release,
        "build": state.build_name,
        "medium": medium,
        "medium_sha256": medium_sha,
        # the key packwrap's media verification uses for this release (fetch-iso)
        "medium_signify_key": _signify_key(release) if medium_sha else "",
    }
    response = _served(state, RESPONSE_FILE)
    if response is not None:
        fields["response_file_sha256"] = file_digest(response, "sha256")
    for name in state.data.get("site_sets") or []:
        served = _served(state, f"{SITE_SUBDIR}/{name}")
        if served is not None:
            fields[f"site_set_sha256.{name}"] = file_digest(served, "sha256")
    moment = time.time() if now is None else now
    fields["build_time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))
    return {k: v for k, v in fields.items() if v}


def record_text(fields: dict[str, str]) -> str:
    lines = [f"# {RECORD_PATH}: how this image was built (packwrap build_record)"]
    lines += [f"{key}: {value}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"


class StepBuildRecord(Step):
    name = "build record"

    def applies(self, state: State) -> bool:
        return config_of(state).build_record

    def run(self, state: State) -> None:
        comm = state.data.get("communicator")
        if comm is None:
            raise PackwrapError("build_record needs the SSH communicator, but none is connected")
        fields = build_record(state)
        state.ui.say(f"Writing the build record {RECORD_PATH}")
        with tempfile.TemporaryDirectory(prefix="packwrap-record-") as tmp:
            local = Path(tmp) / "packwrap-build"
            local.write_text(record_text(fields))
            comm.upload(local, RECORD_PATH)
        status = comm.run(f"chmod 644 {RECORD_PATH}")
        if status != 0:
            raise PackwrapError(f"chmod 644 {RECORD_PATH} exited with status {status}")
        state.data["build_record"] = fields
