"""Walk a release's questions the way install.sub asks them and feed them a response file.

Each asked question consumes the first unconsumed line whose key matches it, in file
order (`_autorespond`); no line -> the default; no default -> the install aborts. The
flow (loops, conditions) mirrors install.sub 1.1266; the texts, defaults and which
questions a release has come from the release data. What the machine looks like (serial
console, disks, DHCP, what a set directory holds) comes from an InstallContext; its
defaults describe the VM packwrap builds (vmd or QEMU with a serial console, one virtio
disk and NIC, the install ISO as cd0, DHCP, no internet).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from fnmatch import fnmatchcase
from typing import Any

from packwrap.autoinstall.checks import RESERVED_LOGINS, value_problem
from packwrap.autoinstall.findings import Finding
from packwrap.autoinstall.matching import Entry, expand_templates, has_template, key_matches
from packwrap.autoinstall.partitioning import mbr_unbootable
from packwrap.autoinstall.release import Prompt, Release
from packwrap.autoinstall.sets_source import server_directory
from packwrap.errors import PackwrapError

_MAX_LOOPS = 25  # install.sub loops until answered; a file can only feed so many


@dataclass(frozen=True)
class InstallContext:
    """The machine the installer runs on (what the response file cannot decide)."""

    serial_console: bool = True
    console_speed: str = "115200"
    com_port: bool = True
    wsdisplay: bool = False
    aperture: bool = False
    interfaces: tuple[str, ...] = ("vio0",)
    wireless: tuple[str, ...] = ()
    dhcp: bool = True
    dhcp_router: bool = True  # QEMU's restrict=on user network offers no router...
    dhcp_dns: bool = True  # ...and no DNS server
    dhcp_hostname: str | None = None
    dhcp_domain: str | None = None
    disks: tuple[str, ...] = ("sd0",)
    cd_devices: tuple[str, ...] = ("cd0",)
    efi: bool = False
    disk_has_openbsd: bool = False
    ncpu: int = 1
    mirror_list: bool = False  # ftplist.cgi reachable (needs internet)
    timezone_hint: str | None = None
    netbooted: bool = False
    #: Files in the build's own docroot set directory (HTTP servers written with Go-template
    #: placeholders, or listed in docroot_servers); None = siteNN.tgz and siteNN-<host>.tgz.
    docroot_sets: tuple[str, ...] | None = None
    docroot_servers: tuple[str, ...] = ()  # host[:port] of the build's own HTTP server
    #: The build's network (packwrap/autoinstall/netlint.py): the builders that serve the
    #: file (empty: unknown), and whether the guest reaches only the build's HTTP server.
    builders: tuple[str, ...] = ()
    hermetic: bool = False

    @classmethod
    def coerce(cls, value: InstallContext | Mapping[str, Any] | None) -> InstallContext:
        if value is None:
            return cls()
        if isinstance(value, InstallContext):
            return value
        names = {f.name for f in fields(cls)}
        unknown = set(value) - names
        if unknown:
            raise PackwrapError(f"unknown answers_context field(s): {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in value.items()
        }
        return cls(**kwargs)


@dataclass
class Consumption:
    entry: Entry
    prompt: Prompt
    question: str
    set_round: int  # 0 before the sets, then 1, 2, ...
    repeat: bool  # not the first time this question was asked in its set round


@dataclass
class SimResult:
    consumed: dict[int, Consumption] = field(default_factory=dict)  # line -> consumption
    #: (prompt id, question, answer, line or None for the default, set round)
    asked: list[tuple[str, str, str, int | None, int]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    aborted: bool = False
    dhcp: bool = False  # an interface was configured by DHCP
    set_rounds: dict[int, dict[str, Any]] = field(default_factory=dict)


class _Abort(Exception):
    pass


def _fill(text: str, values: Mapping[str, Any]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), m.group(0))), text)


def _for_if(ifname: str) -> dict[str, Any]:
    """The {if} placeholder of a per-interface question (`if` is a keyword, so no if=)."""
    return {"if": ifname}


class Simulator:
    def __init__(self, release: Release, entries: list[Entry], context: InstallContext):
        self.rel = release
        self.ctx = context
        self.pending = list(entries)
        self.result = SimResult()
        self.set_round = 0
        self._asked_in_round: set[str] = set()
        self.last_line: int | None = None
        self.hostname = ""

    # -- asking ---------------------------------------------------------------------------
    def finding(self, line: int | None, severity: str, message: str) -> None:
        f = Finding(line or 0, severity, message)
        if f not in self.result.findings:
            self.result.findings.append(f)

    def abort(self, line: int | None, message: str) -> None:
        self.finding(line, "error", message)
        raise _Abort

    def ask(self, pid: str, default: str | None = None, variant: int = 0, **fmt: Any) -> str:
        """One question: the first matching line, else the default, else abort."""
        prompt = self.rel.get(pid)
        if prompt is None:  # this release does not ask it
            return default or ""
        text = prompt.texts[min(variant, len(prompt.texts) - 1)]
        question = _fill(text, fmt)
        if default is None:
            default = _fill(prompt.default or "", fmt)
        repeat = pid in self._asked_in_round
        self._asked_in_round.add(pid)
        for entry in self.pending:
            if key_matches(question, entry.key):
                self.pending.remove(entry)
                self.result.consumed[entry.line] = Consumption(
                    entry, prompt, question, self.set_round, repeat
                )
                self.result.asked.append((pid, question, entry.value, entry.line, self.set_round))
                self.last_line = entry.line
                self._check_value(prompt, question, entry)
                return entry.value
        self.last_line = None
        self.result.asked.append((pid, question, default or "", None, self.set_round))
        if default:
            return default
        self.abort(
            None,
            f'no answer for "{question}", which has no default: the install aborts '
            "(Question has no answer in response file)",
        )
        return ""  # unreachable

    def _check_value(self, prompt: Prompt, question: str, entry: Entry) -> None:
        problem = value_problem(prompt, entry.value, self.rel)
        if problem:
            severity, message = problem
            self.finding(entry.line, severity, f'"{question}": {message}')
            if (
                severity == "error"
                and prompt.kind in ("yesno", "choice")
                and prompt.on_invalid == "abort"
            ):
                raise _Abort

    def ask_yn(self, pid: str, default: str | None = None, **fmt: Any) -> bool:
        answer = expand_templates(self.ask(pid, default, **fmt)).lower()
        return answer in ("y", "yes")

    # -- the flow (install.sub do_install) -------------------------------------------------
    def run(self) -> SimResult:
        try:
            self._install()
        except _Abort:
            self.result.aborted = True
        return self.result

    def _install(self) -> None:
        ctx = self.ctx
        if ctx.serial_console:
            self.ask("terminal_type")
        else:
            self.ask("keyboard_layout")
        host = expand_templates(self.ask("hostname", ctx.dhcp_hostname or ""))
        self.hostname = host.split(".")[0]
        self._network()
        root_pw = self.ask("root_password")
        del root_pw  # checked in _check_value
        self.ask("root_ssh_key")
        sshd = self.ask_yn("sshd")
        # Per arch (install.md): arm64 asks neither the X nor the com0 questions.
        if ctx.wsdisplay and "xenodm" in self.rel:
            x = True
            if ctx.aperture and "x_window_system" in self.rel:
                x = self.ask_yn("x_window_system")
            if x:
                self.ask_yn("xenodm")
        asks_com0 = ctx.com_port and "com0_console" in self.rel
        if asks_com0 and self.ask_yn("com0_console", "yes" if ctx.serial_console else "no"):
            self.ask("com0_speed", ctx.console_speed if ctx.serial_console else "9600")
        self._user()
        if sshd:
            self.ask("root_ssh_login")
        tz_done = False
        if ctx.timezone_hint:
            self._timezone(ctx.timezone_hint)
            tz_done = True
        root = self._root_disk()
        self._disks(root)
        self._sets()
        if not tz_done:
            self._timezone(None, offline_default=self.rel.etc_localtime)

    def _network(self) -> None:
        ctx = self.ctx
        if not ctx.interfaces:
            return
        default = ctx.interfaces[0]
        configured: list[tuple[str, str, str]] = []
        first: str | None = None
        for _ in range(_MAX_LOOPS):
            resp = expand_templates(self.ask("network_interface", default))
            if resp == "done":
                break
            if resp == "?":
                continue
            line = self.last_line
            if resp not in (*ctx.interfaces, "vlan0"):
                if re.fullmatch(r"[a-z]+\d+|([0-9a-f]{2}:){5}[0-9a-f]{2}", resp):
                    self.finding(
                        line,
                        "warning",
                        f"interface {resp!r} is not one of the VM's assumed interfaces "
                        f"({', '.join(ctx.interfaces)}); without it the autoinstall aborts",
                    )
                else:
                    self.abort(line, f"{resp!r} is not a network interface: the autoinstall aborts")
            if resp.startswith("vlan"):
                self.ask("vlan_parent", f"{ctx.interfaces[0]}:none", **_for_if(resp))
            if resp in ctx.wireless:
                self._wireless()
            if first and first != resp:
                self.ask("symbolic_name", self.hostname, **_for_if(resp))
            v4 = self._v4(resp)
            v6 = self._v6(resp)
            if v4 != "none" or v6 != "none":
                first = first or resp
                configured.append((resp, v4, v6))
            default = "done"
        dhcp = any(v4 == "dhcp" for _, v4, _ in configured) and ctx.dhcp
        self.result.dhcp = dhcp
        if any(v4 != "none" for _, v4, _ in configured) and not (dhcp and ctx.dhcp_router):
            self.ask("ipv4_route", "")
        if any(v6 == "static" for _, _, v6 in configured):
            self.ask("ipv6_route")
        if not (dhcp and len(configured) == 1 and not ctx.dhcp_domain):
            self.ask("dns_domain", (ctx.dhcp_domain if dhcp else None) or "my.domain")
        if not (dhcp and ctx.dhcp_dns):  # resolvd learned none: asked, default none
            self.ask("dns_nameservers")

    def _wireless(self) -> None:
        nwid = self.ask("access_point")
        if nwid != "any":
            proto = self.ask("security_protocol")
            if proto[:1] in ("W", "w"):
                self.ask("wep_key")
            elif proto[:1] in ("P", "p"):
                self.ask("wpa_passphrase")

    def _v4(self, ifname: str) -> str:
        resp = expand_templates(self.ask("ipv4_address", **_for_if(ifname)))
        if resp == "none":
            return "none"
        if resp in ("a", "autoconf", "dhcp"):
            return "dhcp"
        if "/" not in resp:
            self.ask("ipv4_netmask", **_for_if(ifname))
        return "static"

    def _v6(self, ifname: str) -> str:
        resp = expand_templates(self.ask("ipv6_address", **_for_if(ifname)))
        if resp == "none":
            return "none"
        if resp in ("a", "autoconf"):
            return "autoconf"
        if "/" not in resp:
            self.ask("ipv6_prefixlen", **_for_if(ifname))
        return "static"

    def _user(self) -> None:
        pid = "user_setup"
        login = None
        for _ in range(_MAX_LOOPS):
            resp = expand_templates(self.ask(pid))
            if resp in ("n", "no"):
                return
            if resp in ("y", "yes"):
                pid = "user_setup_again"
                continue
            if resp in RESERVED_LOGINS or not re.fullmatch(r"[a-z][-a-z0-9_]*", resp):
                continue  # "is not a usable loginname" (the value check names it) and ask again
            if len(resp) <= 31:
                login = resp
                break
        if login is None:
            return
        for _ in range(_MAX_LOOPS):
            name = self.ask("user_fullname", login, login=login)
            if not any(c in name for c in ":&,") and len(name) <= 100:
                break
        self.ask("user_password", login=login)
        self.ask("user_ssh_key", login=login)

    def _timezone(self, hint: str | None, offline_default: str = "") -> None:
        for _ in range(_MAX_LOOPS):
            zone = expand_templates(self.ask("timezone", hint or offline_default)).rstrip("/")
            if self.last_line is None and not hint and offline_default:
                self.finding(
                    None,
                    "warning",
                    f'no answer for "{self.rel["timezone"].text}": the installed system gets '
                    f"the etc set's default timezone {offline_default}",
                )
            if zone in ("", "?"):
                continue
            for _ in range(_MAX_LOOPS):
                if zone not in self.rel.zone_dirs:
                    break
                sub = expand_templates(self.ask("sub_timezone", "", zone=zone)).rstrip("/")
                if sub and sub != "?":
                    zone = f"{zone}/{sub}"
            return

    def _root_disk(self) -> str:
        ctx = self.ctx
        resp = expand_templates(self.ask("root_disk", ctx.disks[0] if ctx.disks else ""))
        name = resp.removeprefix("/dev/")
        if re.fullmatch(r"[0-9a-f]{16}(\.[a-p])?", name):
            return ctx.disks[0] if ctx.disks else name  # a DUID
        name = re.sub(r"(?<=\d)[a-p]$", "", name)
        if name not in ctx.disks:
            line = self.last_line
            if re.fullmatch(r"[a-z]{2,}\d+", name):
                self.finding(
                    line,
                    "warning",
                    f"disk {name!r} is not one of the VM's assumed disks "
                    f"({', '.join(ctx.disks)}); without it the autoinstall aborts",
                )
            else:
                self.abort(line, f"{resp!r} is not a disk name or DUID: the autoinstall aborts")
        return name

    def _disks(self, root: str) -> None:
        rootdisk = root
        done = [root]
        encrypt = self.rel.get("encrypt_root")
        if encrypt is not None and not encrypt.interactive_only:
            for _ in range(_MAX_LOOPS):
                resp = expand_templates(self.ask("encrypt_root"))
                first = resp[:1].lower()
                if first == "n":
                    break
                if first == "k":
                    self.finding(
                        self.last_line,
                        "warning",
                        "keydisk encryption needs a disk with an existing RAID partition; "
                        "this check does not follow that path",
                    )
                    return
                if first == "p":
                    self.ask("new_passphrase")
                    self._prep_fdisk(root, softraid=False)
                    count = sum(1 for d in self.ctx.disks if d.startswith("sd"))
                    rootdisk = f"sd{count}"
                    break
                self.finding(
                    self.last_line,
                    "warning",
                    f"{resp!r} is neither (p)assphrase, (k)eydisk nor no: the installer asks again",
                )
        self._prep_fdisk(rootdisk, softraid=rootdisk != root)
        self._autolayout()
        done.append(rootdisk)
        for _ in range(_MAX_LOOPS):
            others = [d for d in self.ctx.disks if d not in done]
            if not others:
                break
            resp = expand_templates(self.ask("init_disk", "done"))
            if resp == "done":
                break
            if resp not in others:
                self.abort(self.last_line, f"{resp!r} is not a disk to initialize")
            self.abort(
                self.last_line,
                f"initializing {resp} starts the interactive disklabel editor (templates apply "
                "to the root disk only): an autoinstall cannot answer it",
            )

    def _prep_fdisk(self, disk: str, *, softraid: bool) -> None:
        ctx = self.ctx
        area = ctx.disk_has_openbsd and not softraid
        gpt = "gpt" in self.rel["disk_partitioning"].choices  # amd64's question only
        area = area and "OpenBSD" in self.rel["disk_partitioning"].choices
        default = "OpenBSD" if area else ("gpt" if ctx.efi and gpt else "whole")
        for _ in range(_MAX_LOOPS):
            resp = expand_templates(self.ask("disk_partitioning", default, variant=int(area)))
            first = resp[:1].lower()
            if first == "w":
                # The disk that boots: the root disk, or the crypto chunk under softraid.
                why = None if softraid else mbr_unbootable(self.rel, efi=ctx.efi)
                if why and self.last_line is not None:
                    fix = "answer gpt or leave it out" if gpt else "boot it by BIOS"
                    self.finding(self.last_line, "error", f"{why}: {fix}")
                return
            if first == "g" and gpt:
                if ctx.efi or self.ask_yn("gpt_proceed"):
                    return
                continue
            if first == "e":
                self.abort(self.last_line, "(E)dit starts fdisk's interactive editor")
            if first == "o" and area:
                return

    def _autolayout(self) -> None:
        resp = expand_templates(self.ask("disklabel_template"))
        if resp != "none":
            return
        for _ in range(_MAX_LOOPS):
            resp = expand_templates(self.ask("disklabel_layout"))
            if resp[:1] in ("a", "A"):
                return
            if resp[:1] in ("e", "E", "c", "C"):
                raise _Abort  # the value check reported it

    # -- sets (install_sets / install_files) ------------------------------------------------
    def _sets(self) -> None:
        ctx, rel = self.ctx, self.rel
        self.all_sets = rel.all_sets(ctx.ncpu) + [rel.site_set(), rel.site_set(self.hostname)]
        self.default_sets = rel.all_sets(ctx.ncpu)
        self.http_proxy = ""
        self.http_server = ""
        cds = list(ctx.cd_devices)
        default = self._sets_default(cds)
        locations = " ".join(cds + list(rel.set_locations))
        for _ in range(_MAX_LOOPS):
            self._asked_in_round = set()
            resp = expand_templates(self.ask("sets_location", default, locations=locations))
            line = self.last_line
            if resp == "done":
                self._sane_install()
                return
            self.set_round += 1
            self._asked_in_round = {"sets_location"}
            self.result.set_rounds[self.set_round] = {"location": resp, "line": line}
            first = resp[:1].lower()
            if first == "c":
                self._cd_round(resp, cds, line)
            elif first == "d":
                self._disk_round()
            elif first == "h" and "http" in rel.set_locations:
                self._http_round()
            elif first == "n" and "nfs" in rel.set_locations:
                self._nfs_round()
            else:
                self.abort(line, f"{resp!r} is not a valid choice: the autoinstall aborts")
            default = "done"

    def _cd_round(self, resp: str, cds: list[str], line: int | None) -> None:
        """install_sets: 'c' or 'cd' (any case) is the first CD; any other c... answer must
        name a CD device, else the round installs nothing."""
        if not cds:
            return
        device = cds[0] if re.fullmatch(r"[cC][dD]?", resp) else resp
        if device in cds:
            self._mounted_fs("cd")
            return
        self.finding(
            line,
            "warning",
            f"{resp!r} names no CD device ({', '.join(cds)}): nothing is installed from it "
            f"(answer {cds[0]!r} or 'cd')",
        )

    def _sets_default(self, cds: list[str]) -> str:
        """install_sets' first default: the release's order of what the machine has."""
        if self.ctx.netbooted:
            return "http"
        have = {"cd": cds[0] if cds else None, "http": "http" if self.ctx.interfaces else None}
        for kind in self.rel.sets_default_order:
            if have.get(kind):
                return str(have[kind])
        return "disk"

    def _sane_install(self) -> None:
        for s in self.rel.required_sets(self.ctx.ncpu):
            if s in self.default_sets and not self.ask_yn("sure_without", set=s):
                self.abort(
                    self.last_line,
                    f'set {s} was not installed and "Are you *SURE* your install is complete '
                    f"without '{s}'?\" is not answered yes: the autoinstall aborts",
                )

    def _mounted_fs(self, source: str) -> None:
        resp = expand_templates(self.ask("sets_path"))
        if resp == "done":
            return
        files = [*self.rel.all_sets(self.ctx.ncpu), f"INSTALL.{self.rel.arch}", "SHA256"]
        self._install_files(files, signed=None, source=source)

    def _disk_round(self) -> None:
        if not self.ask_yn("disk_mounted"):
            disks = list(self.ctx.disks)
            default = disks[1] if len(disks) > 1 else (disks[0] if disks else "done")
            resp = expand_templates(self.ask("sets_disk", default))
            if resp == "done":
                return
            if resp not in disks:
                self.finding(
                    self.last_line,
                    "warning",
                    f"disk {resp!r} is not one of the VM's assumed disks ({', '.join(disks)})",
                )
        self._mounted_fs("disk")

    def _nfs_round(self) -> None:
        self.ask("nfs_server")
        self.ask("nfs_filesystem")
        self.ask_yn("nfs_tcp")
        self._mounted_fs("nfs")

    def _http_round(self) -> None:
        proxy = expand_templates(self.ask("http_proxy", self.http_proxy or "none"))
        self.http_proxy = "" if proxy == "none" else proxy
        variant = 0 if self.ctx.mirror_list else 1
        raw = ""
        for _ in range(_MAX_LOOPS):
            raw = self.ask("http_server", self.http_server, variant=variant)
            resp = expand_templates(raw)
            if resp == "done":
                return
            if resp == "?" or resp.isdigit():
                continue
            self.http_server = re.sub(r"^[a-z]+://", "", resp)
            break
        directory = expand_templates(self.ask("http_directory")).strip("/")
        # The build serves the release's cached sets there (build/steps/local_sets.py).
        cached_sets = directory == server_directory(self.rel.release, self.rel.arch)
        if not cached_sets and (has_template(raw) or self.http_server in self.ctx.docroot_servers):
            files = list(self.ctx.docroot_sets or ())
            if self.ctx.docroot_sets is None:
                files = [self.rel.site_set(), self.rel.site_set(self.hostname)]
            self._install_files(files, signed=None, source="docroot")
        else:
            sets = self.rel.all_sets(self.ctx.ncpu)
            files = [*sets, f"INSTALL.{self.rel.arch}", "SHA256.sig"]
            self._install_files(files, signed=set(sets), source="mirror")

    def _install_files(self, files: list[str], signed: set[str] | None, source: str) -> None:
        avail = [s for s in self.all_sets if s in files]
        host_set = self.rel.site_set(self.hostname)
        preselected = [s for s in avail if s in self.default_sets or s == host_set]
        if not avail:
            why = " (does the project have a site/ directory?)" if source == "docroot" else ""
            self.abort(
                self.last_line,
                f"the {source} set directory has no sets{why}: the autoinstall aborts",
            )
        if f"INSTALL.{self.rel.arch}" not in files and not self.ask_yn("install_missing"):
            if self.last_line is None:
                self.finding(
                    None,
                    "warning",
                    f'"INSTALL.{self.rel.arch} not found. Use sets found here anyway?" '
                    f"gets the default no: the sets in the {source} directory are skipped",
                )
            return
        selected = self._select_sets(avail, preselected)
        if not selected:
            return
        issue = None
        if "SHA256.sig" not in files:
            issue = "Directory does not contain SHA256.sig"
        else:
            unverified = [s for s in selected if s not in (signed or set())]
            for s in unverified:
                if not self.ask_yn("checksum_failed", set=s):
                    self.abort(
                        self.last_line,
                        f'"Checksum test for {s} failed. Continue anyway?" is not answered '
                        "yes: the autoinstall aborts",
                    )
            if unverified:
                issue = "Unverified sets: " + " ".join(unverified)
        if issue and not self.ask_yn("unverified", issue=issue):
            self.abort(
                self.last_line,
                f'"{issue}. Continue without verification?" is not answered yes: '
                "the autoinstall aborts",
            )
        self.default_sets = [s for s in self.default_sets if s not in selected]
        self.result.set_rounds[self.set_round]["installed"] = selected

    def _select_sets(self, avail: list[str], selected: list[str]) -> list[str]:
        selected = list(selected)
        for _ in range(_MAX_LOOPS):
            resp = self.ask("set_names", "done")
            line = self.last_line
            for token in resp.split():
                if token == "abort":
                    return []
                if token == "done":
                    return [s for s in avail if s in selected]
                selected, hits = apply_set_pattern(avail, selected, token)
                if not hits and line is not None:
                    self.finding(
                        line,
                        "warning",
                        f"set pattern {token!r} matches none of the sets offered here "
                        f"({' '.join(avail)})",
                    )
        return [s for s in avail if s in selected]


def apply_set_pattern(
    avail: list[str], selected: list[str], token: str
) -> tuple[list[str], list[str]]:
    """One `[+|-]pattern` of a `Set name(s)` answer, as install.sub's select_sets reads it
    (`all` is `*`, shell-style matching): (the selection after it, the sets it matched).
    The one rule for the renderer (render.select_sets) and the simulation."""
    remove = token.startswith("-")
    pattern = token[1:] if token[:1] in "+-" else token
    pattern = "*" if pattern == "all" else pattern
    hits = [s for s in avail if fnmatchcase(s, pattern)]
    if remove:
        return [x for x in selected if x not in hits], hits
    return selected + [s for s in hits if s not in selected], hits


def simulate(
    release: Release, entries: list[Entry], context: InstallContext | None = None
) -> SimResult:
    return Simulator(release, entries, context or InstallContext()).run()
