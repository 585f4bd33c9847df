"""Onboard a release from an install's console transcript (`packwrap release add`).

The new data file is self-contained: the nearest known release's questions in order,
with their conditions, and what the transcript shows instead:
- a default shown in `[...]` that differs from the nearest release's (defaults written
  with a per-machine placeholder such as `{first_if}` stay: one machine cannot tell them);
- the etc set's timezone, when the timezone question came after the sets;
- questions no data knows, inserted where the installer asked them, marked for review.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packwrap.autoinstall.drift import WELCOME
from packwrap.autoinstall.matching import canonical_key
from packwrap.autoinstall.release import known_releases, load_release, merged_data
from packwrap.autoinstall.transcript import Asked, installer_questions
from packwrap.errors import PackwrapError

_TOP_KEYS = (
    "release",
    "version",
    "arch",
    "source",
    "set_locations",
    "sets_default_order",
    "etc_localtime",
    "sets",
    "mp_sets",
    "sane_sets",
    "mp_sane_sets",
    "zone_dirs",
    "autoinstall_encryption",
    "whole_disk_efi_sys",
)


@dataclass(frozen=True)
class Onboarded:
    text: str  # the new data file
    diff: str  # against the nearest known release, for review
    nearest: str
    questions: int
    unknown: int


def _numeric(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in name.split("."))


def nearest_release(release: str) -> str:
    """The newest known release before `release`, else the oldest known one."""
    numbered = [r for r in known_releases() if re.fullmatch(r"\d+\.\d+", r) and r != release]
    if not numbered:
        raise PackwrapError("no release data to start from")
    older = [r for r in numbered if _numeric(r) < _numeric(release)]
    return max(older, key=_numeric) if older else min(numbered, key=_numeric)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value), ensure_ascii=False)  # a valid TOML basic string


def render_data(data: dict[str, Any], header: list[str]) -> str:
    """A release data file: header comments, top-level keys, then one [[prompt]] each."""
    out = [f"# {line}" if line else "#" for line in header]
    out.append("")
    rest = [k for k in data if k not in _TOP_KEYS and k != "prompt" and not k.startswith("_")]
    for key in (*_TOP_KEYS, *rest):
        if key in data:
            out.append(f"{key} = {_toml_value(data[key])}")
    for prompt in data["prompt"]:
        out.append("")
        out.extend(f"# {note}" for note in prompt.get("_notes", ()))
        out.append("[[prompt]]")
        out.extend(f"{k} = {_toml_value(v)}" for k, v in prompt.items() if not k.startswith("_"))
    return "\n".join(out) + "\n"


def _new_prompt(item: Asked, release: str, ids: set[str]) -> dict[str, Any]:
    base = re.sub(r"[^a-z0-9]+", "_", canonical_key(item.question).lower()).strip("_") or "q"
    pid, n = base, 2
    while pid in ids:
        pid, n = f"{base}_{n}", n + 1
    ids.add(pid)
    default = item.default or ""
    return {
        "_notes": [f"NEW in {release} (transcript line {item.line}): review text and kind"],
        "id": pid,
        "text": item.question,
        "kind": "yesno" if default.lower() in ("yes", "no") else "text",
        "default": default,
        "condition": f"new in {release}; seen in a transcript (line {item.line})",
    }


def onboard(release: str, transcript: str, *, source_name: str) -> Onboarded:
    """The data file for `release` from `transcript`, and its diff against the nearest."""
    if not re.fullmatch(r"\d+\.\d+", release):
        raise PackwrapError(f"release {release!r} is not of the form X.Y")
    banner = WELCOME.search(transcript)
    if banner and banner.group("release") != release:
        raise PackwrapError(
            f"the transcript is an install of OpenBSD {banner.group('release')}, not {release}"
        )
    nearest = nearest_release(release)
    base = merged_data(nearest)
    asked = installer_questions(transcript, load_release(nearest))
    prompts = [dict(p) for p in base["prompt"]]
    index = {p["id"]: i for i, p in enumerate(prompts)}
    first: dict[str, Asked] = {}
    for item in asked:
        if item.prompt is not None:
            first.setdefault(item.prompt.id, item)
    data = {k: v for k, v in base.items() if not k.startswith("_") and k != "prompt"}
    data.update(
        release=release,
        version=release.replace(".", ""),
        arch=banner.group("arch") if banner else base.get("arch", "amd64"),
        source=f"transcript {source_name}; conditions from {nearest} ({base.get('source', '')})",
    )
    for pid, item in first.items():
        old = str(prompts[index[pid]].get("default") or "")
        shown = item.default or ""
        if "{" not in old and shown != old and pid != "timezone":
            prompts[index[pid]]["default"] = shown
            prompts[index[pid]]["_notes"] = [f"default {old!r} in {nearest}"]
    sets_at = next((a.line for a in asked if a.prompt and a.prompt.id == "sets_location"), None)
    tz = first.get("timezone")
    if tz and tz.default and sets_at is not None and tz.line > sets_at:
        data["etc_localtime"] = tz.default
    # Unknown questions go after the known question the installer asked before them.
    ids = set(index)
    inserts: dict[str | None, list[dict[str, Any]]] = {}
    previous: str | None = None
    for item in asked:
        if item.prompt is not None:
            previous = item.prompt.id
        else:
            inserts.setdefault(previous, []).append(_new_prompt(item, release, ids))
    ordered = list(inserts.get(None, []))
    for p in prompts:
        ordered.append(p)
        ordered.extend(inserts.get(p["id"], []))
    data["prompt"] = ordered
    unknown = sum(len(v) for v in inserts.values())
    header = [
        f"OpenBSD {release} {data['arch']}: written by `packwrap release add` from the console",
        f"transcript {source_name} ({len(asked)} questions asked, {unknown} unknown to {nearest});",
        f"questions and conditions from {nearest}, defaults as the transcript showed them.",
        "Review the NEW and changed entries, and record which install.sub revision confirms them.",
    ]
    text = render_data(data, header)
    before = render_data({**base, "prompt": base["prompt"]}, [f"OpenBSD {nearest} (merged)"])
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=f"{nearest}.toml",
            tofile=f"{release}.toml",
        )
    )
    return Onboarded(text, diff, nearest, len(asked), unknown)


def default_output(release: str) -> Path:
    from packwrap.autoinstall.release import releases_dir

    return releases_dir() / f"{release}.toml"
