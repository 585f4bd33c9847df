"""The manifest post-processor, in Packer's exact file format (Packer's manifest post-processor).

{"builds": [{name, builder_type, build_time, files: [{name, size}] | null, artifact_id,
packer_run_uuid, custom_data}], "last_run_uuid": "..."} with 2-space indent, no
trailing newline, Go's HTML-safe escapes, mode 0664. Builds are appended; the file is
reset only under -force when its last_run_uuid is another run's. `<output>.lock`
(O_EXCL, 3 tries) serialises parallel builds.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from packwrap.atomicfile import atomic_write, with_umask
from packwrap.config.schema import BOOL, MAP, STRING, Config, Option, Schema
from packwrap.errors import PackwrapError

if TYPE_CHECKING:
    from packwrap.build.artifact import Artifact
    from packwrap.postprocess.base import PPContext

BUILDER_ID = "packer.post-processor.manifest"


def go_json(data: Any) -> str:
    """json.MarshalIndent(data, "", "  ") as Go writes it (HTML characters escaped)."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


class FileLock:
    """Packer's manifest lock: create `<path>.lock` with O_EXCL, 3 tries. Builds of this
    process queue on a thread lock first, so parallel builds never exhaust the tries."""

    def __init__(self, path: Path, tries: int = 3, delay: float = 0.5):
        self.path = Path(str(path) + ".lock")
        self.tries = tries
        self.delay = delay

    def __enter__(self) -> FileLock:
        with _THREAD_LOCKS_GUARD:
            self._thread_lock = _THREAD_LOCKS.setdefault(str(self.path), threading.Lock())
        self._thread_lock.acquire()
        try:
            self._acquire()
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def _acquire(self) -> None:
        for attempt in range(self.tries):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                os.close(fd)
                return
            except FileExistsError:
                if attempt + 1 < self.tries:
                    time.sleep(self.delay)
        raise PackwrapError(
            f"cannot lock {self.path}: another build holds it (remove it if no build runs)"
        )

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._thread_lock.release()


class ManifestPostProcessor:
    type_name: ClassVar[str] = "manifest"
    force_keep: ClassVar[bool] = True
    schema: ClassVar[Schema] = Schema(
        [
            Option("output", STRING, "packer-manifest.json"),
            Option("strip_path", BOOL, False),
            Option("strip_time", BOOL, False),
            Option("custom_data", MAP, None),
        ]
    )

    def run(self, config: Config, artifact: Artifact, ctx: PPContext) -> tuple[Artifact, bool]:
        output = Path(config.output or "packer-manifest.json")
        if not output.is_absolute():
            output = ctx.cwd / output
        files = []
        for f in artifact.files:
            p = Path(f)
            size = p.stat().st_size if p.exists() else 0
            files.append({"name": p.name if config.strip_path else str(f), "size": size})
        entry: dict[str, Any] = {
            "name": ctx.build_name,
            "builder_type": ctx.builder_type,
        }
        if not config.strip_time:
            entry["build_time"] = int(time.time())
        entry.update(
            files=files or None,
            artifact_id=artifact.id,
            packer_run_uuid=ctx.run_uuid,
            custom_data=_custom_data(config.custom_data, artifact, getattr(ctx.ui, "mask", None)),
        )
        output.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(output):
            manifest: dict[str, Any] = {"builds": [], "last_run_uuid": ""}
            if output.exists():
                try:
                    manifest = json.loads(output.read_text(encoding="utf-8") or "{}")
                except (OSError, ValueError) as exc:
                    raise PackwrapError(f"{output}: not a readable manifest: {exc}") from None
                if not isinstance(manifest, dict) or not isinstance(
                    manifest.get("builds", []), list
                ):
                    raise PackwrapError(f"{output}: not a Packer manifest")
                manifest.setdefault("builds", [])
                if ctx.force and manifest.get("last_run_uuid") != ctx.run_uuid:
                    manifest = {"builds": []}
            manifest["builds"] = [*(manifest.get("builds") or []), entry]
            manifest["last_run_uuid"] = ctx.run_uuid
            ordered = {"builds": manifest["builds"], "last_run_uuid": ctx.run_uuid}
            # Packer writes it 0664 less the umask.
            atomic_write(output, go_json(ordered), mode=with_umask(0o664))
        ctx.ui.message(f"Manifest written to {output}")
        return artifact, True


def _custom_data(
    custom: dict[str, Any] | None, artifact: Artifact, mask: Callable[[str], str] | None = None
) -> dict[str, str] | None:
    # build_record = true: the fields of the image's /etc/packwrap-build, then the
    # template's own custom_data (which wins on a shared key).
    record = {str(k): str(v) for k, v in (artifact.state.get("build_record") or {}).items()}
    if not custom and not record:
        return None
    from packwrap.build.bootcommand import render

    generated = dict(artifact.state.get("generated_data") or {})
    data = record | {
        k: render(str(v), generated, what=f"custom_data.{k}") for k, v in (custom or {}).items()
    }
    # Unlike Packer, sensitive values never reach the manifest (it is shared and archived).
    return {k: mask(v) for k, v in data.items()} if mask else data
