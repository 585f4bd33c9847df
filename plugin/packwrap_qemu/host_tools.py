"""What options need on the build host, checked by `validate` (and `build`) up front.

Each missing tool is one problem naming the Debian package that has it, so a template
that asks for a TPM, a floppy or a bridge fails before anything runs.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from packwrap.sdk import Config

# Where Debian, Fedora and Homebrew put QEMU's setuid bridge helper (not on PATH).
BRIDGE_HELPERS = (
    "/usr/lib/qemu/qemu-bridge-helper",
    "/usr/libexec/qemu-bridge-helper",
    "/usr/local/libexec/qemu-bridge-helper",
    "/opt/homebrew/libexec/qemu-bridge-helper",
)


def bridge_helper() -> Path | None:
    return next((Path(p) for p in BRIDGE_HELPERS if Path(p).exists()), None)


BRIDGE_ACL = "/etc/qemu/bridge.conf"


def bridge_allowed(bridge: str, acl: str = BRIDGE_ACL) -> bool:
    """qemu-bridge-helper's ACL: `allow NAME` or `allow all` (includes not followed)."""
    try:
        lines = Path(acl).read_text().splitlines()
    except OSError:
        return False
    allowed = {ln.split()[1] for ln in lines if len(ln.split()) == 2 and ln.split()[0] == "allow"}
    return bridge in allowed or "all" in allowed


# QEMU's loadable block drivers (Debian: qemu-block-extra); a QEMU without a module
# directory has its drivers built in.
MODULE_DIRS = ("/usr/lib/*/qemu", "/usr/lib64/qemu", "/usr/lib/qemu")


def lacks_curl_driver() -> bool:
    """True when QEMU loads block drivers as modules and the curl one is not there."""
    import glob

    dirs = [d for pattern in MODULE_DIRS for d in glob.glob(pattern)]
    modular = [d for d in dirs if glob.glob(f"{d}/block-*.so")]
    return bool(modular) and not any(Path(d, "block-curl.so").exists() for d in modular)


def _tool_problems(config: Config) -> list[tuple[str, str]]:
    """(message, option) for each option whose host tool is missing."""
    out: list[tuple[str, str]] = []
    floppy = config.floppy_files or config.floppy_dirs or config.floppy_content
    if floppy and not (shutil.which("mformat") and shutil.which("mcopy")):
        out.append(("floppy_* needs mformat and mcopy; install mtools", "floppy_files"))
    if (config.cd_files or config.cd_content) and not shutil.which("xorriso"):
        out.append(("cd_files/cd_content need xorriso; install xorriso", "cd_files"))
    if config.vtpm and not shutil.which("swtpm"):
        out.append(("vtpm needs swtpm; install swtpm (apt-get install swtpm)", "vtpm"))
    remote = [u for u in [config.iso_url, *config.iso_urls] if u and "://" in u]
    skip_cache_remote = config.iso_skip_cache and remote and not remote[0].startswith("file://")
    if skip_cache_remote and lacks_curl_driver():
        out.append(
            (
                "iso_skip_cache: QEMU reads the URL with its curl block driver; "
                "install qemu-block-extra",
                "iso_skip_cache",
            )
        )
    if config.net_bridge:
        if not sys.platform.startswith("linux"):
            out.append(("net_bridge is only supported in Linux based OSes", "net_bridge"))
        elif bridge_helper() is None:
            out.append(
                ("net_bridge needs qemu-bridge-helper; install qemu-system-common", "net_bridge")
            )
        elif not bridge_allowed(config.net_bridge):
            out.append(
                (
                    f"net_bridge {config.net_bridge}: qemu-bridge-helper refuses it; add "
                    f"`allow {config.net_bridge}` to {BRIDGE_ACL}",
                    "net_bridge",
                )
            )
    return out


def check_host_tools(config: Config, problem: Callable[[str, str | None], None]) -> None:
    for message, option in _tool_problems(config):
        problem(message, option)
    if config.net_bridge and config.hermetic_network:
        problem("net_bridge and hermetic_network are mutually exclusive", "net_bridge")
    for path in config.floppy_files:
        if not any(Path(p).exists() for p in _glob(path)):
            problem(f"floppy_files: {path} not found", "floppy_files")
    for path in config.floppy_dirs:
        if not any(Path(p).is_dir() for p in _glob(path)):
            problem(f"floppy_dirs: {path} is not a directory", "floppy_dirs")


def _glob(pattern: str) -> list[str]:
    """Packer's floppy_files take globs."""
    import glob

    return glob.glob(pattern) if glob.has_magic(pattern) else [pattern]
