"""The install cache key: sha256 of a canonical JSON document of the install's inputs.

The document holds what shapes the installed disk and nothing that runs after the
install (provisioners, shutdown, post-processors, output names): the boot command and
boot_expect, every file served to the installer (the docroot as the build serves it,
the site set directory), the project's installer answers, the communicator's credentials
(secrets only as hashes), plus the fields the builder adds (medium, disk, machine,
firmware). The document is kept beside the entry (key.json) for `packwrap cache list`
and debugging, so it names files by digest and secrets by hash only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packwrap.media.checksums import file_digest

if TYPE_CHECKING:
    from packwrap.build.common_options import CommonConfig
    from packwrap.build.state import State

#: Bumped when the document's shape or an input's meaning changes: old entries never hit.
DOCUMENT_VERSION = 1
#: Project values whose name holds one of these words enter the key hashed.
_SECRET_WORDS = ("password", "passphrase", "secret", "private")


def canonical_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def key_of(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


def secret_hash(value: object) -> str:
    """A secret as it enters the key: its sha256, never the value."""
    return "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()


def text_hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def file_hash(path: str | Path | None) -> str | None:
    """A file's content digest (None: no file named); a missing file is its own value."""
    if not path:
        return None
    p = Path(path)
    return "sha256:" + file_digest(p, "sha256") if p.is_file() else f"missing:{p.name}"


def tree_hashes(root: Path, override: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every file under `root` by relative path -> content digest (+ "x" when executable);
    `override` (relative path -> text) stands in for files served from elsewhere."""
    out: dict[str, str] = {}
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.is_file():
                mark = "x" if path.stat().st_mode & 0o111 else ""
                out[path.relative_to(root).as_posix()] = (
                    "sha256:" + file_digest(path, "sha256") + mark
                )
    for rel, text in (override or {}).items():
        out[rel] = text_hash(text)
    return out


def _project_values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: secret_hash(value) if any(w in name.lower() for w in _SECRET_WORDS) else value
        for name, value in sorted(values.items())
    }


def _boot_command(config: CommonConfig) -> list[str]:
    secret = set(config.boot_secret_elements or [])
    return [secret_hash(e) if i in secret else e for i, e in enumerate(config.boot_command or [])]


def _served_files(state: State) -> dict[str, Any]:
    """What the HTTP server serves the installer, before per-build rendering: the docroot
    files (X.pkr.in templates included; a blueprint project's out-of-date ones as the
    build renders them for its variables) and http_content, by digest."""
    from packwrap.build.state import config_of
    from packwrap.build.steps.http_server import _generated_under, resolve_http_directory

    config = config_of(state)
    served: dict[str, Any] = {}
    if config.http_directory:
        docroot = resolve_http_directory(config.http_directory, state)
        generated = _generated_under(docroot, state.data.get("generated_files") or {})
        served["http_directory"] = tree_hashes(docroot, generated)
    content = config.http_content or {}
    if content:
        served["http_content"] = {k: text_hash(str(v)) for k, v in sorted(content.items())}
    return served


def _credentials(state: State) -> dict[str, Any]:
    """How the provisioning boot logs in reaches the install (install.conf names the
    temporary key or the password): which kind, the user, secrets hashed."""
    from packwrap.build.state import config_of
    from packwrap.communicator.steps import needs_temporary_key, uses_ssh

    config = config_of(state)
    if not uses_ssh(state):
        return {"communicator": config.communicator}
    password = config.ssh_password
    return {
        "communicator": "ssh",
        "ssh_username": config.ssh_username,
        "ssh_password": secret_hash(password) if password else None,
        "ssh_private_key_file": file_hash(config.ssh_private_key_file),
        "temporary_key": needs_temporary_key(state),
    }


def core_inputs(state: State) -> dict[str, Any]:
    """The inputs every builder shares (the builder adds its own: see install_document)."""
    from packwrap.blueprint.record import read_record
    from packwrap.build.state import config_of

    record = read_record(Path(state.template_dir))
    values = state.data.get("project_values") or (record.values if record else {})
    config = config_of(state)
    return {
        "boot_command": _boot_command(config),
        "boot_expect": list(config.boot_expect or []),
        "served": _served_files(state),
        "site": tree_hashes(Path(state.template_dir) / "site"),
        "project_values": _project_values(values),
        "credentials": _credentials(state),
    }


def install_document(state: State, builder_inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The whole key document of this build's install."""
    return {
        "version": DOCUMENT_VERSION,
        "builder": state.source_type,
        "core": core_inputs(state),
        "builder_inputs": dict(builder_inputs),
    }
