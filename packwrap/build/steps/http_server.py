"""StepHTTPServer: serve http_directory / http_content to the guest for as long as the build runs.

Reads from the state bag (all optional, set by the builder before this step):
  "http_bind_address"  where to listen (else http_bind_address / http_interface, else
                       127.0.0.1)
  "http_ip"            what {{ .HTTPIP }} renders to in generated files (default: bind)
  "http_guest_port"    what {{ .HTTPPort }} renders to (default: the listening port)
  "vm_name"            {{ .Name }} / {{ .VMName }}
Puts: "http_port" (0 if no server), "http_server" (DocrootServer), "http_overlay_dir"
(a private temp dir served before the docroot; later steps may drop files there).
Generated files `X.pkr.in` in the docroot are rendered into the overlay as `X`;
"generated_files" (absolute path -> text) stand in for docroot files that are out of
date with the project's variables (packwrap/blueprint/regenerate.py).
Cleanup stops the server (the port is free afterwards) and removes the overlay.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from packwrap.build import bootcommand
from packwrap.build.http_server import (
    DocrootServer,
    render_generated_files,
    requested_bind_address,
)
from packwrap.build.state import State, config_of
from packwrap.build.step import Step
from packwrap.build.ui import log_line
from packwrap.errors import PackwrapError


def template_data(state: State) -> dict[str, object]:
    """The Go-template fields for boot commands and generated files."""
    # vm_name is a builder option, not a common one: the output-directory step puts
    # the effective name in the bag (packwrap/build/steps/output_dir.py).
    name = state.data.get("vm_name") or state.source_name
    port = state.data.get("http_port") or 0
    guest_port = state.data.get("http_guest_port") or port
    return {
        "HTTPIP": state.data.get("http_ip", ""),
        "HTTPPort": guest_port if guest_port else "",
        "Name": name,
        "VMName": name,
        "SSHPublicKey": state.data.get("ssh_public_key", ""),
    }


def resolve_http_directory(raw: str, state: State) -> Path:
    """Packer resolves http_directory against the working directory; packwrap also
    accepts it relative to the template's directory (so `packwrap build DIR` works)."""
    p = Path(raw).expanduser()
    candidate = p if p.is_absolute() or p.is_dir() else Path(state.template_dir) / p
    if not candidate.is_dir():
        raise PackwrapError(f"http_directory {raw!r} is not a directory")
    return candidate.resolve()


def _generated_under(docroot: Path, generated: dict[str, str]) -> dict[str, str]:
    """state.data["generated_files"] (absolute path -> text, from a blueprint project whose
    files are out of date with the variables): those inside the docroot, by relative path."""
    out = {}
    for path, text in generated.items():
        try:
            out[Path(path).relative_to(docroot).as_posix()] = text
        except ValueError:  # not served from this docroot
            continue
    return out


class StepHTTPServer(Step):
    name = "http server"

    def __init__(self, config: object = None) -> None:  # config: accepted, read from state
        self.server: DocrootServer | None = None
        self.overlay: Path | None = None

    def run(self, state: State) -> None:
        config = config_of(state)
        directory, content = config.http_directory, config.http_content
        state.data.setdefault("http_port", 0)
        if not directory and not content:
            return
        protocol = config.http_network_protocol
        bind = state.data.get("http_bind_address") or requested_bind_address(config) or "127.0.0.1"
        docroot = resolve_http_directory(directory, state) if directory else None
        self.overlay = Path(tempfile.mkdtemp(prefix="packwrap-http-"))
        state.data["http_overlay_dir"] = str(self.overlay)
        ui = state.ui
        self.server = DocrootServer(
            roots=[self.overlay, *([docroot] if docroot else [])],
            bind=bind,
            protocol=protocol,
            port_min=config.http_port_min,
            port_max=config.http_port_max,
            log=lambda m: log_line(ui, m),
            warn=ui.error,
        )
        state.data["http_port"] = self.server.port
        state.data["http_server"] = self.server
        state.data.setdefault("http_ip", bind)
        data = template_data(state)
        if content:
            self.server.content.update(
                {
                    k: bootcommand.render(str(v), data, what=f"http_content[{k!r}]").encode()
                    for k, v in content.items()
                }
            )
        if docroot:
            generated = _generated_under(docroot, state.data.get("generated_files") or {})
            for made, source in render_generated_files(
                docroot, self.overlay, data, generated=generated
            ):
                log_line(ui, f"Generated {made} from {source}")
        ui.say(f"Starting HTTP server on {bind}:{self.server.port}")

    def cleanup(self, state: State) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None
            state.data.pop("http_server", None)
        if self.overlay is not None:
            shutil.rmtree(self.overlay, ignore_errors=True)
            self.overlay = None
