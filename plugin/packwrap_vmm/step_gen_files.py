"""Generated docroot files (the Go plugin's stepGenFiles, `gen_files_*` options).

Files named `<gen_files_pattern>*.<gen_files_extension>` under http_directory are
rendered with {{ .VMName }} {{ .Name }} {{ .HTTPIP }} {{ .HTTPPort }} and served
without the extension. Departure from the Go plugin: it wrote the result next to
the template inside the user's http_directory (and left it there); packwrap
renders into the HTTP server's private per-build overlay (state
"http_overlay_dir"), which is served before the docroot, so the user's files are
never written. The core server already renders every `*.pkr.in` (the default
extension) into that overlay with the same renderer; this step handles any other
extension.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from packwrap.sdk import (
    Step,
    log_line,
    render_generated_files,
    resolve_http_directory,
    template_data,
)
from packwrap_vmm.config import config_of

if TYPE_CHECKING:
    from packwrap.sdk import State


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
        made = render_generated_files(
            docroot, Path(overlay), template_data(state), pattern=pattern, extension=ext
        )
        for generated, source in made:
            log_line(state.ui, f"Generated {generated} from {source}")
