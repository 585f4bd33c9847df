"""Generated docroot files (the Go plugin's stepGenFiles, `gen_files_*` options).

Files named `<gen_files_pattern>*.<gen_files_extension>` under http_directory are
rendered with {{ .VMName }} {{ .Name }} {{ .HTTPIP }} {{ .HTTPPort }} and served
without the extension. Departure from the Go plugin: it wrote the result next to
the template inside the user's http_directory (and left it there); packwrap
renders into the HTTP server's private per-build overlay (state
"http_overlay_dir"), which is served before the docroot, so the user's files are
never written. The core server already renders every `*.pkr.in` (the default
extension) into that overlay; this step handles any other extension.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.build import bootcommand
from packwrap.build.step import Step
from packwrap.build.steps.http_server import resolve_http_directory, template_data
from packwrap.build.ui import log_line
from packwrap_vmm.config import config_of

if TYPE_CHECKING:
    from packwrap.build.state import State


class StepGenFiles(Step):
    name = "generated files"

    def run(self, state: State) -> None:
        cfg = config_of(state)
        overlay = state.data.get("http_overlay_dir")
        ext = cfg.gen_files_extension or "pkr.in"
        http_directory = cfg.http_directory
        if not http_directory or not overlay or ext == "pkr.in":
            return
        docroot = resolve_http_directory(http_directory, state)
        pattern = f"{cfg.gen_files_pattern or cfg.vm_name}*.{ext}"
        data = template_data(state)
        for src in sorted(docroot.rglob("*")):
            if not src.is_file() or not fnmatch.fnmatchcase(src.name, pattern):
                continue
            rel = src.relative_to(docroot)
            dest = Path(overlay) / rel.parent / rel.name[: -len(ext) - 1]
            dest.parent.mkdir(parents=True, exist_ok=True)
            text = bootcommand.render(src.read_text(encoding="utf-8"), data, what=str(src))
            tmp = dest.with_name(dest.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, dest)
            log_line(state.ui, f"Generated {rel.parent / dest.name} from {rel}")
