"""StepSiteSet: build the project's site/ directory into site sets the installer can fetch.

Runs after StepHTTPServer and writes into its private overlay (served before the docroot)
under site/: siteNN.tgz (or siteNN-<hostname>.tgz) and index.txt. The rendered
install.conf names that directory (packwrap.autoinstall.render). Release, hostname and
per-host come from the constructor, else from the build's project values (state
"project_values", set by the build for a blueprint project), else from its
.packwrap/project.json; the release as packwrap/blueprint/record.py resolves it (also
from an installNN.iso named in the config).

With the project's `ssh_host_key_pin` on, the set also carries a host key pair made for
this build (etc/ssh/ssh_host_ed25519_key, 0600), and the communicator pins its
fingerprint (state.data["ssh_host_key_fingerprint"]).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from packwrap.blueprint.record import ProjectRecord, read_record, resolve_release
from packwrap.build.state import State
from packwrap.build.step import Step
from packwrap.errors import PackwrapError


def _installurl(values: dict[str, Any]) -> str:
    """/etc/installurl for the image: the mirror the sets came from, else the CDN."""
    from packwrap.autoinstall.siteset import DEFAULT_INSTALLURL

    server = str(values.get("sets_http_server") or "")
    if values.get("sets_location") != "http" or not server or "{{" in server:
        return DEFAULT_INSTALLURL
    if "://" not in server:
        server = "https://" + server
    directory = str(values.get("sets_http_directory") or "pub/OpenBSD/x/y").strip("/")
    base = directory.rsplit("/", 2)[0] if directory.count("/") >= 2 else directory
    return f"{server.rstrip('/')}/{base}"


class StepSiteSet(Step):
    name = "site-set"

    def __init__(
        self,
        *,
        site_dir: str | Path | None = None,
        release: str | None = None,
        hostname: str | None = None,
        per_host: bool | None = None,
        host_key_pin: bool | None = None,
    ) -> None:
        self.site_dir = Path(site_dir) if site_dir else None
        self.release = release
        self.hostname = hostname
        self.per_host = per_host
        self.host_key_pin = host_key_pin

    def run(self, state: State) -> None:
        site_dir = self.site_dir or Path(state.template_dir) / "site"
        if not site_dir.is_absolute():
            site_dir = Path(state.template_dir) / site_dir
        record = read_record(Path(state.template_dir))
        # the build's values (the record keeps those of the last `new`/`regenerate`)
        values = state.data.get("project_values") or (record.values if record else {})
        pin = (
            self.host_key_pin
            if self.host_key_pin is not None
            else values.get("ssh_host_key_pin") in (True, "true")
        )
        if pin and values.get("site_set") not in (True, "true", None):
            raise PackwrapError(
                "ssh_host_key_pin needs site_set = true (the host key reaches the "
                "image in the site set)"
            )
        if pin and not site_dir.is_dir():
            # Nothing of the project's own to ship: a set with the host key alone.
            with tempfile.TemporaryDirectory(prefix="packwrap-site-") as empty:
                self._build(state, Path(empty), record, values, pin)
            return
        if not site_dir.is_dir():
            # Asked for (explicitly, or by the project's site_set): install.conf has a site
            # round, and the installer aborts when it finds no set there.
            if self.site_dir or values.get("site_set") in (True, "true"):
                raise PackwrapError(
                    f"site set directory {site_dir} does not exist (site_set is on: the "
                    "installer would abort in the site set round)"
                )
            return
        self._build(state, site_dir, record, values, pin)

    def _build(
        self,
        state: State,
        site_dir: Path,
        record: ProjectRecord | None,
        values: dict[str, Any],
        pin: bool,
    ) -> None:
        from packwrap.autoinstall.siteset import SITE_SUBDIR, build_site_sets

        config = state.config
        release = resolve_release(
            flag=self.release,
            record=record,
            variables={"release": state.data.get("release")},
            media=config.values() if isinstance(config, dict) else (),
        )
        if not release:
            raise PackwrapError(
                f"{site_dir}: cannot name the site set without the OpenBSD release "
                "(no .packwrap/project.json)"
            )
        hostname = self.hostname or values.get("hostname")
        per_host = (
            self.per_host
            if self.per_host is not None
            else bool(values.get("site_set_per_host", False))
        )
        overlay = state.data.get("http_overlay_dir")
        if not overlay:
            raise PackwrapError("site sets need the HTTP server's overlay (StepHTTPServer first)")
        out = Path(overlay) / SITE_SUBDIR
        files = None
        if pin:
            from packwrap.autoinstall.hostkey import make_host_key

            key = make_host_key(f"root@{hostname or 'openbsd'}")
            files = key.site_files()
            state.data["ssh_host_key_fingerprint"] = key.fingerprint
            state.ui.say(f"Site set: a new SSH host key for the image, {key.fingerprint}")
        names = build_site_sets(
            site_dir,
            out,
            release=str(release),
            hostname=hostname,
            per_host=per_host,
            installurl=_installurl(values),
            files=files,
        )
        state.data["site_sets"] = names
        state.ui.say(f"Site set {', '.join(names)} from {site_dir} served as /{SITE_SUBDIR}/")
