"""Where the installer gets its sets over HTTP: the build's own server, or a remote mirror.

`sets_location = "http"` with `sets_http_server` empty (or naming the build's server by
its template fields) means the sets `packwrap fetch-iso --sets` put in the media cache,
served by the build itself (packwrap/build/steps/local_sets.py): hermetic, and verified
by the installer from SHA256.sig. Any other server is a remote mirror, which a hermetic
network cannot reach.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The answer to "HTTP Server?" that names the build's own server.
BUILD_SERVER = "{{ .HTTPIP }}:{{ .HTTPPort }}"


def is_build_server(server: str) -> bool:
    """Empty, or the build's server written with its template fields."""
    server = server.strip()
    return not server or ("{{" in server and "HTTPIP" in server)


def _is_http(values: Mapping[str, Any]) -> bool:
    return str(values.get("sets_location") or "") == "http"


def serves_local_sets(values: Mapping[str, Any]) -> bool:
    """The build serves the cached sets (and fetch-iso in the project fetches them)."""
    return _is_http(values) and is_build_server(str(values.get("sets_http_server") or ""))


def remote_mirror(values: Mapping[str, Any]) -> str | None:
    """The remote mirror the sets come from, if any."""
    server = str(values.get("sets_http_server") or "").strip()
    return server if _is_http(values) and not is_build_server(server) else None


def server_directory(release: str, arch: str) -> str:
    """Where the build serves the cached sets: the installer's default `Server directory`."""
    return f"pub/OpenBSD/{release}/{arch}"
