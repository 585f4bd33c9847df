"""Per-release installer question lists, loaded from blueprints/openbsd/releases/*.toml.

Differences between releases live in those data files (a release may be `based_on`
another and `replace`/`remove` prompts); code never branches on a release number.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from packwrap.errors import PackwrapError

KINDS = ("yesno", "choice", "text", "password", "list")


def blueprints_dir() -> Path:
    """The blueprints tree: packaged as packwrap/_blueprints, or the repo's blueprints/."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_blueprints", here.parent / "blueprints"):
        if candidate.is_dir():
            return candidate
    raise PackwrapError("blueprints directory not found (broken installation)")


def releases_dir() -> Path:
    return blueprints_dir() / "openbsd" / "releases"


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    kind: str
    default: str | None = None  # None/"" = no default: autoinstall aborts without an answer
    choices: tuple[str, ...] = ()
    accept: str | None = None  # regex of every answer the installer takes
    variants: tuple[str, ...] = ()
    condition: str = ""
    ai_only: bool = False
    machine: bool = False  # asked depending on the machine (so an unused answer is fine)
    answerable: bool = True  # False: asked before the response file is loaded
    interactive_only: bool = False
    plaintext_secret: bool = False
    on_invalid: str = "abort"  # or "ask_again"

    @property
    def texts(self) -> tuple[str, ...]:
        return (self.text, *self.variants)

    def accepts(self, value: str) -> bool:
        if self.kind == "yesno":
            return value.lower() in ("y", "yes", "n", "no")
        if self.accept:
            return re.search(self.accept, value) is not None
        if self.kind == "choice" and self.choices:
            return value.lower() in (c.lower() for c in self.choices)
        return True


@dataclass(frozen=True)
class Release:
    release: str  # "7.6"
    version: str  # "76" (set names)
    arch: str
    prompts: tuple[Prompt, ...]
    set_locations: tuple[str, ...]
    sets: tuple[str, ...]
    mp_sets: tuple[str, ...]
    sane_sets: tuple[str, ...]
    mp_sane_sets: tuple[str, ...]
    zone_dirs: tuple[str, ...]
    autoinstall_encryption: bool
    #: the first `Location of sets?` default: the first the machine has ("cd", "http")
    sets_default_order: tuple[str, ...] = ("cd", "http")
    #: the etc set's /etc/localtime: the offline timezone default after the sets
    etc_localtime: str = ""
    #: `whole` at the disk question leaves an EFI System partition UEFI boots from
    whole_disk_efi_sys: bool = False
    source: str = ""
    path: Path | None = None
    _by_id: dict[str, Prompt] = field(default_factory=dict, compare=False, repr=False)

    def get(self, prompt_id: str) -> Prompt | None:
        return self._by_id.get(prompt_id)

    def __getitem__(self, prompt_id: str) -> Prompt:
        return self._by_id[prompt_id]

    def __contains__(self, prompt_id: object) -> bool:
        return prompt_id in self._by_id

    def all_sets(self, ncpu: int = 1) -> list[str]:
        """Sets in install order (ALLSETS without site sets)."""
        if ncpu > 1:
            return list(self.mp_sets) + [s for s in self.sets if not s.startswith("bsd")]
        return list(self.sets)

    def required_sets(self, ncpu: int = 1) -> list[str]:
        return list(self.mp_sane_sets if ncpu > 1 else self.sane_sets)

    def site_set(self, hostname: str | None = None) -> str:
        return f"site{self.version}-{hostname}.tgz" if hostname else f"site{self.version}.tgz"


#: The release name of -current: the snapshots/<arch>/ directory of a mirror.
SNAPSHOTS = "snapshots"
_NAME = re.compile(r"\d+\.\d+|" + SNAPSHOTS)


def known_releases() -> list[str]:
    """X.Y releases in order, then snapshots (the release under development)."""
    names = [p.stem for p in releases_dir().glob("*.toml") if _NAME.fullmatch(p.stem)]
    return sorted(
        names, key=lambda r: (r == SNAPSHOTS, tuple(int(x) for x in r.split(".") if x.isdigit()))
    )


def _read(release: str) -> dict[str, Any]:
    path = releases_dir() / f"{release}.toml"
    if not _NAME.fullmatch(release) or not path.is_file():
        raise PackwrapError(
            f"unknown OpenBSD release {release!r} (known: {', '.join(known_releases())})"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PackwrapError(f"bad release data: {exc}", file=str(path)) from None
    data["_path"] = path
    return data


def _prompt(raw: dict[str, Any], where: Path) -> Prompt:
    try:
        kind = raw["kind"]
        if kind not in KINDS:
            raise PackwrapError(f"prompt {raw.get('id')}: kind {kind!r} not in {KINDS}")
        return Prompt(
            id=raw["id"],
            text=raw["text"],
            kind=kind,
            default=raw.get("default"),
            choices=tuple(raw.get("choices", ())),
            accept=raw.get("accept"),
            variants=tuple(raw.get("variants", ())),
            condition=raw.get("condition", ""),
            ai_only=bool(raw.get("ai_only", False)),
            machine=bool(raw.get("machine", False)),
            answerable=bool(raw.get("answerable", True)),
            interactive_only=bool(raw.get("interactive_only", False)),
            plaintext_secret=bool(raw.get("plaintext_secret", False)),
            on_invalid=str(raw.get("on_invalid", "abort")),
        )
    except KeyError as exc:
        raise PackwrapError(f"prompt without {exc.args[0]!r}", file=str(where)) from None


def _merged(release: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Resolve `based_on`: the base's data, then this file's keys, replaces and removals."""
    data = _read(release)
    base_name = data.get("based_on")
    if not base_name:
        return data
    if base_name in seen:
        raise PackwrapError(f"release data: based_on loop {' -> '.join(seen)}")
    return _overlay(_merged(base_name, (*seen, release)), data)


def known_arches() -> list[str]:
    """amd64 (the release files' own) and every arch with an overlay in releases/arch/."""
    return ["amd64", *sorted(p.stem for p in (releases_dir() / "arch").glob("*.toml"))]


def _arch_overlay(arch: str) -> dict[str, Any]:
    path = releases_dir() / "arch" / f"{arch}.toml"
    if not re.fullmatch(r"[a-z0-9]+", arch) or not path.is_file():
        raise PackwrapError(f"unknown arch {arch!r} (known: {', '.join(known_arches())})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PackwrapError(f"bad arch data: {exc}", file=str(path)) from None
    data["_path"] = path
    return data


def _overlay(base: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """`data`'s keys over `base`'s, with its `replace`d and `remove`d prompts."""
    prompts = [dict(p) for p in base["prompt"]]
    index = {p["id"]: i for i, p in enumerate(prompts)}
    for new in data.get("replace", []):
        if new["id"] not in index:
            raise PackwrapError(f"replace of unknown prompt {new['id']!r}", file=str(data["_path"]))
        prompts[index[new["id"]]] = new
    removed = set(data.get("remove", []))
    prompts = [p for p in prompts if p["id"] not in removed]
    merged = {k: v for k, v in base.items() if k not in ("replace", "remove", "based_on")}
    merged.update({k: v for k, v in data.items() if k not in ("replace", "remove", "based_on")})
    merged["prompt"] = prompts
    return merged


def merged_data(release: str) -> dict[str, Any]:
    """A release's raw data with `based_on` resolved (placeholders unfilled)."""
    return _merged(release)


def _fill(text: str, values: dict[str, str]) -> str:
    # Only the release-wide placeholders; per-machine ones ({if}, {login}...) stay.
    for key, val in values.items():
        text = text.replace("{" + key + "}", val)
    return text


@cache
def load_release(release: str, arch: str | None = None) -> Release:
    """The question list of an OpenBSD release ("7.6") on `arch` (default: the release
    file's own, amd64); PackwrapError for unknown ones."""
    release = str(release).strip()
    data = _merged(release)
    where = data["_path"]
    if arch and arch != data["arch"]:
        arch_data = _arch_overlay(arch)
        source = f"{data.get('source', '')}; {arch}: {arch_data.get('source', '')}"
        data = {**_overlay(data, arch_data), "source": source}
    fill = {"release": data["release"], "version": data["version"], "arch": data["arch"]}
    prompts = []
    for raw in data.get("prompt", []):
        p = _prompt(raw, where)
        prompts.append(
            replace(
                p,
                text=_fill(p.text, fill),
                variants=tuple(_fill(v, fill) for v in p.variants),
                default=None if p.default is None else _fill(p.default, fill),
                condition=_fill(p.condition, fill),
            )
        )
    ids = [p.id for p in prompts]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise PackwrapError(f"duplicate prompt ids {sorted(dupes)}", file=str(where))

    def sets(key: str) -> tuple[str, ...]:
        return tuple(_fill(s, fill) for s in data.get(key, ()))

    rel = Release(
        release=data["release"],
        version=data["version"],
        arch=data["arch"],
        prompts=tuple(prompts),
        set_locations=tuple(data.get("set_locations", ("disk", "http"))),
        sets=sets("sets"),
        mp_sets=sets("mp_sets"),
        sane_sets=sets("sane_sets"),
        mp_sane_sets=sets("mp_sane_sets"),
        zone_dirs=tuple(data.get("zone_dirs", ())),
        autoinstall_encryption=bool(data.get("autoinstall_encryption", False)),
        sets_default_order=tuple(data.get("sets_default_order", ("cd", "http"))),
        etc_localtime=str(data.get("etc_localtime", "")),
        whole_disk_efi_sys=bool(data.get("whole_disk_efi_sys", False)),
        source=data.get("source", ""),
        path=where,
    )
    rel._by_id.update({p.id: p for p in prompts})
    return rel
