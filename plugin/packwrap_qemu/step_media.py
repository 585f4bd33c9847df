"""Find the boot media on disk (ISO, kernel, initrd) and verify the ISO's checksum.

packwrap builds from local files: iso_url may be a path or a file:// URL; a remote
iso_url is used through iso_target_path, where `packwrap fetch-iso` downloads it.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.sdk import PackwrapError, Step
from packwrap_qemu import qemu
from packwrap_qemu.config import config_of, is_remote
from packwrap_qemu.machine import medium_kind

if TYPE_CHECKING:
    from packwrap.sdk import Config, State


def local_path(url: str) -> Path:
    return Path(url.removeprefix("file://")).expanduser()


def _read_text(location: str) -> str:
    if is_remote(location):
        raise PackwrapError(f"checksum file {location} is remote; download it with fetch-iso")
    return local_path(location).read_text()


def verify_checksum(path: Path, spec: str) -> str | None:
    """Check `path` against Packer's iso_checksum forms; the digest checked, or None."""
    from packwrap.sdk import parse_iso_checksum

    checksum = parse_iso_checksum(spec, filename=path.name, read_text=_read_text)
    if checksum is None:
        return None
    h = hashlib.new(checksum.algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != checksum.hexdigest:
        raise PackwrapError(
            f"{path}: {checksum.algo} checksum mismatch (expected {checksum.hexdigest}, "
            f"got {h.hexdigest()})"
        )
    return str(checksum)


def byte_serving_url(urls: list[str]) -> str:
    """The first URL whose server answers HEAD with Accept-Ranges: bytes (Packer's rule
    for iso_skip_cache: QEMU's curl driver reads ranges)."""
    import urllib.request

    for url in urls:
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "Packer"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                if response.headers.get("Accept-Ranges") == "bytes":
                    return url
        except OSError:
            continue
    raise PackwrapError(
        f"iso_skip_cache: no byte serving support at {urls[0]}; the HTTP server must "
        "support Accept-Ranges=bytes"
    )


class StepResolveMedia(Step):
    name = "resolve boot media"

    def __init__(self) -> None:
        self.cd_dir: str | None = None

    def run(self, state: State) -> None:
        config = config_of(state)
        urls = [config.iso_url] if config.iso_url else list(config.iso_urls)
        if urls and config.iso_skip_cache and all(is_remote(u) for u in urls):
            # Packer's stepSetISO: QEMU reads the URL itself (byte ranges), nothing cached.
            state.data["iso_path"] = url = byte_serving_url(urls)
            kind = "disk" if url.lower().endswith(".img") else "cdrom"
            state.data["iso_kind"] = "image" if config.disk_image else kind
        elif urls:
            state.data["iso_path"] = iso = self._iso(urls, config, state)
            # .iso: a CD; .img (installXY.img, minirootXY.img): a disk; checked by content
            # disk_image: the image to build on (StepCreateDisk), never attached itself
            kind = "image" if config.disk_image else medium_kind(Path(iso))
            state.data["iso_kind"] = kind
        # The provisioning boot's kernel is checked now too: fail before the install.
        for key in ("kernel", "initrd", "provision_kernel", "provision_initrd"):
            if config.get(key):
                path = local_path(config[key])
                if not path.is_file():
                    raise PackwrapError(f"{key} {path} not found")
                state.data[f"{key}_path"] = path.resolve()
        if config.cd_files or config.cd_content:
            self.cd_dir = tempfile.mkdtemp(prefix="packwrap-cd-")
            iso = Path(self.cd_dir) / "cidata.iso"
            files = [Path(p) for p in config.cd_files]
            qemu.driver(state).make_cd(iso, files, config.cd_label, config.cd_content)
            state.data["cd_path"] = iso

    def _iso(self, urls: list[str], config: Config, state: State) -> Path:
        candidates = [local_path(u) for u in urls if not is_remote(u)]
        if config.iso_target_path:
            from packwrap.sdk import packer_target_path

            for url in [u for u in urls if is_remote(u)] or urls[:1]:
                target = packer_target_path(
                    url, config.iso_checksum, config.iso_target_path, config.iso_target_extension
                )
                candidates.append(target)
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            if any(is_remote(u) for u in urls):
                into = f" --output {candidates[-1]}" if config.iso_target_path else ""
                raise PackwrapError(
                    f"ISO not downloaded yet ({urls[0]}); run `packwrap fetch-iso{into}` first"
                )
            raise PackwrapError(
                f"ISO {candidates[0]} not found (`packwrap fetch-iso` downloads and verifies it)"
            )
        checked = verify_checksum(path, config.iso_checksum)
        state.ui.message(f"Using ISO {path}" + (f" ({checked} OK)" if checked else ""))
        if checked and checked.startswith("sha256:"):
            # the install cache key's medium, as input_file_hash would give it: no re-read
            state.data["iso_sha256"] = checked
        return path.resolve()

    def cleanup(self, state: State) -> None:
        if self.cd_dir:
            shutil.rmtree(self.cd_dir, ignore_errors=True)
