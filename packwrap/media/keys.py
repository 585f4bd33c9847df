"""Where the signify key for an OpenBSD release comes from, in order:

1. `--signify-key PATH`;
2. the host's `/etc/signify/openbsd-XY-base.pub` (PACKWRAP_SIGNIFY_DIR overrides the dir);
3. a key the blueprint pins: `blueprints/openbsd/keys/openbsd-XY-base.pub` (OpenBSD's
   own release keys, 7.5-8.1; see the README there).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path

from packwrap.errors import PackwrapError, UsageError

SYSTEM_KEY_DIR = Path("/etc/signify")


@dataclasses.dataclass(frozen=True)
class KeySource:
    path: Path
    origin: str  # "--signify-key", "host", "blueprint"


def release_tag(release: str) -> str:
    """'7.6' -> '76' (the XY in openbsd-XY-base.pub, install76.iso); 'snapshots' -> the
    release under development's, from its release data ('81': install81.iso, signed with
    openbsd-81-base.pub)."""
    if release.strip() == "snapshots":
        from packwrap.autoinstall.release import load_release

        return load_release("snapshots").version
    m = re.fullmatch(r"(\d+)\.(\d+)", release.strip())
    if not m:
        raise UsageError(f"release {release!r} is not of the form X.Y (e.g. 7.6) or snapshots")
    return m[1] + m[2]


def key_file_name(release: str) -> str:
    return f"openbsd-{release_tag(release)}-base.pub"


def _blueprint_roots() -> list[Path]:
    import packwrap

    pkg = Path(packwrap.__file__).resolve().parent
    # Installed wheel: packwrap/_blueprints; source checkout: <repo>/blueprints.
    return [pkg / "_blueprints", pkg.parent / "blueprints"]


def pinned_key_path(release: str) -> Path | None:
    """The key the openbsd blueprint pins for `release`, if it ships one."""
    name = key_file_name(release)
    for root in _blueprint_roots():
        candidate = root / "openbsd" / "keys" / name
        if candidate.is_file():
            return candidate
    return None


def find_key(
    release: str, explicit: Path | None, env: Mapping[str, str] | None = None
) -> KeySource | None:
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise UsageError(f"--signify-key {explicit}: no such file")
        return KeySource(path, "--signify-key")
    env = os.environ if env is None else env
    host_dir = Path(env.get("PACKWRAP_SIGNIFY_DIR") or SYSTEM_KEY_DIR)
    host = host_dir / key_file_name(release)
    if host.is_file():
        return KeySource(host, "host")
    pinned = pinned_key_path(release)
    if pinned is not None:
        return KeySource(pinned, "blueprint")
    return None


def no_key_error(release: str, env: Mapping[str, str] | None = None) -> PackwrapError:
    env = os.environ if env is None else env
    name = key_file_name(release)
    host_dir = Path(env.get("PACKWRAP_SIGNIFY_DIR") or SYSTEM_KEY_DIR)
    return PackwrapError(
        f"no signify key for OpenBSD {release}: pass --signify-key PATH ({name}), or install "
        f"{host_dir / name}; to proceed without signify use --checksum or --insecure-unsigned"
    )
