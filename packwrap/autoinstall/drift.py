"""Drift guard: hold the questions an installer really asks against the release data.

The release comes from the installer's own banner (`Welcome to the OpenBSD/amd64 8.0
installation program.`), the response file from the URL the installer fetched. A question
no release data knows is
- fatal when nothing answers it: the installer said `Question has no answer in response
  file` after it, or it is still waiting (the console is quiet) with no answer typed;
- a warning when it was answered from the response file or took its default.
Either way the message names the question, the release and its data file, so the data can
be brought up to date (`packwrap release add`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from packwrap.autoinstall.matching import Entry, key_matches, parse
from packwrap.autoinstall.release import Release, known_arches, known_releases, load_release
from packwrap.autoinstall.transcript import Asked, clean_lines, parse_transcript
from packwrap.errors import PackwrapError

WELCOME = re.compile(r"Welcome to the \w+/(?P<arch>\w+) (?P<release>\d+\.\d+)\S* installation")
NO_ANSWER = "Question has no answer in response file"
_FETCHING = re.compile(r"^Fetching (?P<url>https?://\S+)")
#: How long a question may stand unanswered on a quiet console before the build fails.
QUIET_SECONDS = 3.0


class InstallerDrift(PackwrapError):
    """The installer asked a question the release data does not know, and nothing answers it."""


def _data_name(release: str) -> str:
    """The release data for an installer banner's X.Y: a -current snapshot names the
    release under development, whose questions are the snapshots data."""
    known = known_releases()
    if (
        release not in known
        and "snapshots" in known
        and load_release("snapshots").version == release.replace(".", "")
    ):
        return "snapshots"
    return release


@dataclass
class DriftGuard:
    """Reads a growing console transcript; `check` returns new warnings or raises."""

    #: fetches the response file the installer named (URL -> text, None if unknown)
    response_for: Callable[[str], str | None] = lambda url: None
    release: Release | None = None
    _entries: list[Entry] | None = None
    _seen: set[int] = field(default_factory=set)
    _announced: bool = False
    _start: int = 0  # where the installer's banner starts: boot messages are not read

    def check(self, text: str, *, quiet_for: float = 0.0) -> list[str]:
        """Warnings for questions first seen in `text` (the whole transcript so far);
        InstallerDrift for an unknown question nothing answers. `quiet_for` is how long
        the console has been silent."""
        warnings: list[str] = []
        if self.release is None:
            found = WELCOME.search(text)
            if found is None:
                return warnings
            self._start = text.rfind("\n", 0, found.start()) + 1
            name, arch = _data_name(found.group("release")), found.group("arch")
            if name not in known_releases() or arch not in known_arches():
                if not self._announced:
                    self._announced = True
                    warnings.append(
                        f"the installer is OpenBSD/{arch} {name}, which packwrap has no "
                        f"release data for (known: {', '.join(known_releases())} on "
                        f"{', '.join(known_arches())}): its questions are not checked"
                    )
                return warnings
            self.release = load_release(name, arch)
        text = text[self._start :]
        asked = parse_transcript(text, self.release)
        lines = clean_lines(text)
        if self._entries is None:
            self._entries = self._response(asked, lines)
        for item in asked:
            if item.prompt is not None or item.line in self._seen:
                continue
            after = "\n".join(lines[item.line : item.line + 3])
            if NO_ANSWER in after:
                raise self._fatal(item, "and the response file has no answer for it")
            if not item.complete:
                if not item.answer and quiet_for >= QUIET_SECONDS:
                    raise self._fatal(item, "and nothing answers it (the installer is waiting)")
                continue  # may still be answered
            self._seen.add(item.line)
            warnings.append(self._warning(item))
        return warnings

    def _response(self, asked: list[Asked], lines: list[str]) -> list[Entry] | None:
        url = next((a.answer for a in asked if a.prompt and a.prompt.id == "response_file"), "")
        if not url:
            url = next((m.group("url") for ln in lines if (m := _FETCHING.match(ln))), "")
        text = self.response_for(url) if url else None
        return parse(text) if text is not None else None

    def _where(self) -> str:
        rel = self.release
        assert rel is not None
        return f"the OpenBSD {rel.release} release data ({rel.path})"

    def _fatal(self, item: Asked, why: str) -> InstallerDrift:
        return InstallerDrift(
            f'the installer asked "{item.question}", a question {self._where()} does not '
            f"know, {why}: answer it in the response file, or add it to the data "
            "(packwrap release add)"
        )

    def _warning(self, item: Asked) -> str:
        entry = next((e for e in self._entries or () if key_matches(item.question, e.key)), None)
        if entry is not None:
            how = f"answered {item.answer!r} by response file line {entry.line}"
        elif self._entries is not None and item.default is not None:
            how = f"took its default {item.default!r}"
        else:
            how = f"answered {item.answer!r}"
        return f'the installer asked "{item.question}", unknown to {self._where()}; it {how}'
