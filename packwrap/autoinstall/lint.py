"""`packwrap lint`: check a response file against a release's real questions.

Two passes. A static one matches every line's key against every question of the release
(install.sub's rule, §1.2) to learn which question the line is meant for: no question ->
a typo (with the closest key suggested); several -> a broad key. Then the simulated
installer (simulate.py) asks the questions in order and consumes lines the way
`_autorespond` does; a line taken by a question it was not meant for is a stolen answer.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Mapping
from typing import Any

from packwrap.autoinstall.checks import value_problem
from packwrap.autoinstall.findings import Finding
from packwrap.autoinstall.matching import Entry, canonical_key, key_matches, parse
from packwrap.autoinstall.netlint import network_findings
from packwrap.autoinstall.release import Prompt, Release, load_release
from packwrap.autoinstall.simulate import InstallContext, SimResult, simulate

__all__ = ["Finding", "lint", "InstallContext"]

_ISSUES = (
    "Directory does not contain SHA256.sig",
    "Cannot determine prefetch area",
    "Cannot create prefetch area",
    "Cannot fetch SHA256.sig",
    "Signature check of SHA256.sig failed",
)


def _placeholders(text: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", text)


def _instantiate(text: str, candidates: Mapping[str, list[str]], limit: int = 400) -> list[str]:
    names = list(dict.fromkeys(_placeholders(text)))
    if not names:
        return [text]
    pools = [candidates.get(n) or ["{" + n + "}"] for n in names]
    out = []
    for combo in itertools.islice(itertools.product(*pools), limit):
        filled = text
        for n, v in zip(names, combo, strict=True):
            filled = filled.replace("{" + n + "}", v)
        out.append(filled)
    return out


def _key_spans(key: str) -> list[str]:
    """Every run of whole words of a key: stand-ins for a placeholder the key spells out."""
    words = key.split()
    spans = [" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)]
    return [s for s in spans if s != key.strip()]  # the key must also match literal text


class _Intentions:
    """Which question(s) each line's key can answer."""

    def __init__(self, rel: Release, entries: list[Entry], ctx: InstallContext):
        self.rel = rel
        self.prompts = list(rel.prompts)
        values: dict[str, list[str]] = {p.id: [] for p in self.prompts}
        probe = {p.id: p for p in self.prompts}
        for e in entries:  # answers that name things questions mention later
            for pid in ("network_interface", "user_setup", "user_setup_again", "hostname"):
                if any(key_matches(q, e.key) for q in _instantiate(probe[pid].text, {})):
                    values[pid].append(e.value.strip())
        hostnames = [h.split(".")[0] for h in values["hostname"]] or ["host"]
        logins = [v for v in values["user_setup"] + values["user_setup_again"]] or ["user"]
        sets = rel.all_sets(2) + [rel.site_set()] + [rel.site_set(h) for h in hostnames]
        cds = list(ctx.cd_devices) or ["cd0"]
        self.candidates = {
            "if": list(dict.fromkeys([*ctx.interfaces, *values["network_interface"], "vlan0"])),
            "login": logins,
            "zone": list(rel.zone_dirs),
            "disk": list(dict.fromkeys([*ctx.disks, "sd0", "sd1", "sd2", "wd0", "wd1"])),
            "cd": cds,
            "set": sets,
            "issue": [*_ISSUES, *(f"Unverified sets: {s}" for s in sets)],
            "locations": [" ".join(cds + list(rel.set_locations)), " ".join(rel.set_locations)],
        }
        self.instances = {
            p.id: [q for t in p.texts for q in _instantiate(t, self.candidates)]
            for p in self.prompts
        }

    def matches(self, key: str) -> list[Prompt]:
        found = [p for p in self.prompts if any(key_matches(q, key) for q in self.instances[p.id])]
        if found:
            return found
        spans = _key_spans(key)
        for p in self.prompts:
            texts = [t for t in p.texts if _placeholders(t)]
            pools = {n: spans for t in texts for n in _placeholders(t)}
            if any(key_matches(q, key) for t in texts for q in _instantiate(t, pools)):
                found.append(p)
        return found

    def intended(self, key: str, matched: list[Prompt]) -> Prompt | None:
        if len(matched) == 1:
            return matched[0]
        wanted = key.strip().rstrip("?").rstrip().lower()
        exact = [
            p
            for p in matched
            if any(canonical_key(q).lower() == wanted for q in self.instances[p.id])
        ]
        return exact[0] if len(exact) == 1 else None

    def text(self, p: Prompt) -> str:
        """The question as this machine would see it (placeholders filled)."""
        return (self.instances.get(p.id) or [p.text])[0]

    def suggestion(self, key: str) -> str | None:
        keys = {canonical_key(q) for qs in self.instances.values() for q in qs}
        keys = {k for k in keys if "{" not in k}
        lowered = {k.lower(): k for k in keys}
        close = difflib.get_close_matches(key.lower(), list(lowered), n=1, cutoff=0.5)
        return lowered[close[0]] if close else None


def _format_lines(text: str) -> list[Finding]:
    out = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip(" \t")
        if "\r" in line:
            out.append(
                Finding(
                    number,
                    "error",
                    "carriage return (CRLF line ending): the installer keeps it in the answer",
                )
            )
            line = line.replace("\r", "")
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            out.append(Finding(number, "warning", "not a 'question = answer' line: ignored"))
        elif line.startswith("="):
            out.append(Finding(number, "warning", "line starts with '=': ignored"))
        elif not line.partition("=")[2].strip(" \t"):
            out.append(
                Finding(
                    number, "warning", "nothing after '=': ignored (an empty answer is impossible)"
                )
            )
        elif re.search(r"\s#", line.partition("=")[2]):
            out.append(
                Finding(
                    number,
                    "warning",
                    "'#' after the answer is not a comment: it is part of the answer",
                )
            )
    return out


def _round_blocks(res: SimResult) -> list[tuple[int, int]]:
    """(line of a 'Location of sets' answer, its set round), in file order."""
    blocks = [(r["line"], n) for n, r in res.set_rounds.items() if r.get("line")]
    return sorted(blocks)


def lint(
    text: str,
    release: str,
    *,
    path: str | None = None,
    answers_context: InstallContext | Mapping[str, Any] | None = None,
    arch: str | None = None,
) -> list[Finding]:
    """Findings for a response file (hand-written or rendered, .pkr.in placeholders allowed)
    against the installer of `release` on `arch` (default amd64)."""
    rel = load_release(release, arch)
    ctx = InstallContext.coerce(answers_context)
    entries = parse(text)
    findings: list[Finding] = _format_lines(text)
    intents = _Intentions(rel, entries, ctx)

    intended: dict[int, Prompt | None] = {}
    matched: dict[int, list[Prompt]] = {}
    for e in entries:
        matched[e.line] = intents.matches(e.key)
        intended[e.line] = intents.intended(e.key, matched[e.line])
        if not matched[e.line]:
            hint = intents.suggestion(e.key)
            extra = f"; did you mean '{hint}'?" if hint else ""
            findings.append(
                Finding(
                    e.line,
                    "error",
                    f"'{e.key}' matches no question of the {rel.release} installer{extra}",
                )
            )

    res = simulate(rel, entries, ctx)
    findings.extend(res.findings)
    findings.extend(network_findings(res, ctx))
    route_q = rel.get("ipv4_route")
    if (
        res.dhcp
        and ctx.dhcp_router
        and route_q is not None
        and not any(key_matches(route_q.text, e.key) for e in entries)
    ):
        findings.append(
            Finding(
                0,
                "warning",
                f'no answer for "{route_q.text}": a DHCP server that sends no router (QEMU\'s '
                "restricted user network) makes the installer ask it with no default and "
                "abort; add 'Default IPv4 route = none'",
            )
        )

    # Stolen answers: a line taken by a question it was not meant for.
    for line, c in res.consumed.items():
        meant = intended.get(line)
        if meant is not None and meant.id == c.prompt.id:
            continue
        victims = [
            other
            for other in entries
            if other.line != line
            and (other_meant := intended.get(other.line)) is not None
            and other_meant.id == c.prompt.id
            and (
                other.line not in res.consumed or res.consumed[other.line].prompt.id != c.prompt.id
            )
        ]
        if victims:  # another line written for this question lost its answer
            message = (
                f"the key '{c.entry.key}' steals the answer to \"{c.question}\" from "
                f"line {victims[0].line}"
            )
            findings.append(Finding(line, "error", message))
        elif meant is not None:  # named `meant` exactly, but also matches an earlier question
            message = (
                f'meant for "{intents.text(meant)}" but "{c.question}" is asked first and '
                f"takes it: the key '{c.entry.key}' is too broad"
            )
            findings.append(Finding(line, "warning", message))
        else:
            names = "; ".join(intents.text(p) for p in matched[line][:4])
            message = (
                f"the key '{c.entry.key}' matches several questions ({names}); the first "
                "one asked takes it -- write the question up to its '?'"
            )
            findings.append(Finding(line, "warning", message))

    # A line placed in one set round's block but taken by an earlier round.
    blocks = _round_blocks(res)
    defaulted = {(a[0], a[4]) for a in res.asked if a[3] is None}
    for line, c in res.consumed.items():
        block = max((n for start, n in blocks if start < line), default=0)
        if c.set_round and block > c.set_round and (c.prompt.id, block) in defaulted:
            how = "the repeated" if c.repeat else "the"
            fix = " (it repeats until 'done': answer 'done' first)" if c.repeat else ""
            findings.append(
                Finding(
                    line,
                    "error",
                    f'written for set round {block} but taken by {how} "{c.question}" of set '
                    f"round {c.set_round}{fix}; round {block} then gets the default",
                )
            )

    # Lines never consumed.
    answered_by: dict[str, int] = {}
    for line, c in sorted(res.consumed.items()):
        answered_by.setdefault(c.prompt.id, line)
    for e in entries:
        if e.line in res.consumed:
            continue
        meant = intended.get(e.line)
        candidates = matched.get(e.line, [])
        judge = meant or (candidates[0] if len({p.kind for p in candidates}) == 1 else None)
        if judge is not None:
            problem = value_problem(judge, e.value, rel)
            if problem:
                findings.append(
                    Finding(e.line, problem[0], f'"{intents.text(judge)}": {problem[1]}')
                )
        if meant is not None and not meant.answerable:
            findings.append(
                Finding(
                    e.line,
                    "warning",
                    f'"{intents.text(meant)}" is asked before the response file is read: '
                    "never used",
                )
            )
            continue
        if meant is not None and meant.interactive_only:
            findings.append(
                Finding(
                    e.line, "warning", f'"{intents.text(meant)}" is never asked under autoinstall'
                )
            )
            continue
        if res.aborted or not candidates:
            continue  # the simulated install stopped before it could get here
        if meant is None:
            findings.append(
                Finding(
                    e.line, "warning", f"the key '{e.key}' matches several questions; never used"
                )
            )
        elif meant.id in answered_by:
            findings.append(
                Finding(
                    e.line,
                    "warning",
                    f'never used: "{intents.text(meant)}" was answered by line '
                    f"{answered_by[meant.id]} and is not asked again",
                )
            )
        elif not meant.machine:
            findings.append(
                Finding(
                    e.line,
                    "warning",
                    f'never used: "{intents.text(meant)}" is not asked with these answers '
                    f"({meant.condition})",
                )
            )

    unique = sorted(set(findings), key=lambda f: (f.line, f.severity != "error", f.message))
    return [Finding(f.line, f.severity, f.message, path) for f in unique]


def has_errors(findings: list[Finding]) -> bool:
    return any(f.is_error for f in findings)
