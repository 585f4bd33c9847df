"""Render install.conf from the installer variables.

Only what differs from the installer's defaults plus what an unattended install needs:
the hostname, the root password, the timezone, the set location and the questions a set
location or a site set raises; answers whose default drifts between releases (the IPv6
address, the set location) are always written, so one file means the same on every
release. Keys are the canonical form (the question up to its first '?'), in the order the
installer asks, so `packwrap lint` proves every line lands on its question. Inconsistent
variables raise PackwrapError instead of writing a line the installer would never ask or
would misread.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from packwrap.autoinstall.checks import LOGIN, RESERVED_LOGINS, ZONE, known_timezone
from packwrap.autoinstall.disklabel import render_disklabel
from packwrap.autoinstall.matching import canonical_key, expand_templates
from packwrap.autoinstall.partitioning import ANSWERS as PARTITIONING_ANSWERS
from packwrap.autoinstall.partitioning import partitioning_problem
from packwrap.autoinstall.passwords import LOCKED, check_password_value
from packwrap.autoinstall.release import Release, load_release
from packwrap.autoinstall.sets_source import BUILD_SERVER, is_build_server, server_directory
from packwrap.autoinstall.simulate import InstallContext, apply_set_pattern
from packwrap.autoinstall.siteset import SITE_SUBDIR
from packwrap.autoinstall.variables import resolve
from packwrap.build import guest_network
from packwrap.errors import PackwrapError

__all__ = ["render_install_conf", "render_disklabel", "answers_context", "DEFAULT_HTTP_BASE"]

DEFAULT_HTTP_BASE = "http://{{ .HTTPIP }}:{{ .HTTPPort }}"
_SERVER = re.compile(r"^(https?://)?[A-Za-z0-9:.\[\]_-]+$")


class _Lines:
    def __init__(self, rel: Release):
        self.rel = rel
        self.lines: list[str] = []

    def add(self, pid: str, value: Any, *, key: str | None = None, **fmt: str) -> None:
        prompt = self.rel[pid]
        text = prompt.text
        for name, val in fmt.items():
            text = text.replace("{" + name + "}", val)
        value = str(value)
        if not value.strip() or "\n" in value or "\r" in value:
            raise PackwrapError(f"answer to {prompt.text!r} must be one non-empty line")
        self.lines.append(f"{key or canonical_key(text)} = {value.strip()}")


def _fail(name: str, message: str) -> PackwrapError:
    return PackwrapError(f"variable {name}: {message}")


def _one_line(v: dict[str, Any], name: str) -> str:
    value = str(v[name]).strip()
    if "\n" in value or "\r" in value:
        raise _fail(name, "must be a single line")
    return value


def _ip_ok(value: str, version: int) -> bool:
    try:
        if "/" in value:
            return ipaddress.ip_interface(value).version == version
        return ipaddress.ip_address(value).version == version
    except ValueError:
        return False


def select_sets(rel: Release, tokens: str, *, ncpu: int = 1) -> list[str]:
    """The sets the installer ends up with for a `Set name(s)` answer (select_sets)."""
    avail = rel.all_sets(ncpu)
    selected = list(avail)
    for token in tokens.split():
        if token in ("done", "abort"):
            raise _fail("sets", f"{token!r} is not a set pattern")
        selected, hits = apply_set_pattern(avail, selected, token)
        if not hits:
            raise _fail("sets", f"{token!r} matches none of the sets ({' '.join(avail)})")
    return [s for s in avail if s in selected]


def _split_base(http_base: str) -> tuple[str, str]:
    m = re.match(r"^(https?://)?([^/]+)(/.*)?$", http_base.strip())
    if not m:
        raise PackwrapError(f"http_base {http_base!r} is not an http://host:port URL")
    server = (m.group(1) or "http://") + m.group(2)
    path = (m.group(3) or "").strip("/")
    if not _SERVER.match(expand_templates(server)):
        raise PackwrapError(f"http_base {http_base!r}: the installer cannot use this server")
    return server, path


def answers_context(
    values: Mapping[str, Any], release: str = "7.6", arch: str | None = None
) -> InstallContext:
    """The machine the rendered file is checked against: the default VM, adjusted to the
    interface, disks and site set the variables name."""
    v = resolve(values)
    rel = load_release(release, arch)
    host = str(v["hostname"]).split(".")[0] if v["site_set_per_host"] else None
    disks = ["sd0"]
    if v["root_disk"] and v["root_disk"] not in disks:
        disks = [v["root_disk"]]
    if v["sets_location"] == "disk":
        disks.append(v["sets_disk"] or "sd1")
    interfaces = (v["network_interface"],) if v["network_interface"] else ("vio0",)
    return InstallContext(
        interfaces=interfaces,
        disks=tuple(dict.fromkeys(disks)),
        docroot_sets=(rel.site_set(host),),
    )


def render_install_conf(
    values: Mapping[str, Any],
    release: str,
    *,
    http_base: str = DEFAULT_HTTP_BASE,
    arch: str | None = None,
    efi: bool = False,
) -> str:
    """install.conf for `values`; `efi`: a build boots the installer through UEFI."""
    rel = load_release(release, arch)
    v = resolve(values)
    out = _Lines(rel)
    # In the order the installer asks; each section checks its variables as it goes.
    _hostname(v, out)
    networked = _network(v, out)
    _root_and_services(v, out)
    _user(v, out)
    _timezone(v, rel, out)
    _disks(v, rel, out, networked=networked, http_base=http_base, efi=efi)
    _sets(v, rel, out, networked=networked, http_base=http_base)
    return "\n".join(out.lines) + "\n"


def _hostname(v: dict[str, Any], out: _Lines) -> None:
    hostname = _one_line(v, "hostname")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*", hostname):
        raise _fail("hostname", f"{hostname!r} is not a host name (letters, digits, '-', '.')")
    out.add("hostname", hostname)


# -- network --------------------------------------------------------------------------------


def _network(v: dict[str, Any], out: _Lines) -> bool:
    """Interface, addresses, routes and DNS; True when the VM has a network at all."""
    nic = _one_line(v, "network_interface")
    ipv4, ipv6 = _one_line(v, "ipv4"), _one_line(v, "ipv6")
    ipv4 = _address_choice(ipv4, "ipv4", 4, dhcp_words=("a", "dhcp"))
    ipv6 = _address_choice(ipv6, "ipv6", 6, dhcp_words=("a",))
    _addresses(v, out, nic, ipv4, ipv6)
    route4, route6 = _one_line(v, "ipv4_route"), _one_line(v, "ipv6_route")
    _ipv4_route(out, ipv4, route4, netmask=_one_line(v, "ipv4_netmask"))
    _ipv6_route(out, ipv6, route6)
    _dns(v, out, dhcp=ipv4 == "autoconf")
    return ipv4 != "none" or ipv6 != "none"


def _is_static(address: str) -> bool:
    return address not in ("autoconf", "none")


def _address_choice(value: str, name: str, version: int, *, dhcp_words: tuple[str, ...]) -> str:
    """'autoconf', 'none' or an address (with or without a prefix length)."""
    if value in dhcp_words:
        value = "autoconf"
    if _is_static(value) and not _ip_ok(value, version):
        raise _fail(name, f"{value!r} is not 'autoconf', 'none' or an IPv{version} address")
    return value


def _addresses(v: dict[str, Any], out: _Lines, nic: str, ipv4: str, ipv6: str) -> None:
    if nic:
        out.add("network_interface", nic)
    if_fmt = {"if": nic} if nic else {}
    # Without a known interface name the shorter key "IPv4 address for" still matches only
    # that question (lint proves it).
    if ipv4 != "autoconf":
        out.add("ipv4_address", ipv4, key=None if nic else "IPv4 address for", **if_fmt)
    if _is_static(ipv4) and "/" not in ipv4:
        mask = _one_line(v, "ipv4_netmask")
        try:
            ipaddress.IPv4Network(f"0.0.0.0/{mask}")
        except ValueError:
            raise _fail("ipv4_netmask", f"{mask!r} is not a netmask") from None
        if mask != "255.255.255.0":
            out.add("ipv4_netmask", mask, key=None if nic else "Netmask for", **if_fmt)
    # Always written: its default drifts (none up to 7.9, autoconf from 8.0).
    out.add("ipv6_address", ipv6, key=None if nic else "IPv6 address for", **if_fmt)


def _ipv4_route(out: _Lines, ipv4: str, route4: str, *, netmask: str) -> None:
    if _is_static(ipv4):
        if not route4:
            raise _fail("ipv4_route", "required with a static ipv4 (an address or 'none')")
        if route4 != "none" and not _ip_ok(route4, 4):
            raise _fail("ipv4_route", f"{route4!r} is not an IPv4 address or 'none'")
        try:  # the one rule the builders apply too: the netmask must contain the route
            guest_network.parse_static_ipv4(ipv4, netmask, route4)
        except ValueError as exc:
            raise _fail("ipv4_route", str(exc)) from None
        out.add("ipv4_route", route4)
    elif ipv4 == "autoconf":
        # Asked only when the DHCP server sends no router (QEMU's restricted user network
        # does not): then it has no default and the install would abort. Harmless otherwise.
        if route4 and route4 != "none" and not _ip_ok(route4, 4):
            raise _fail("ipv4_route", f"{route4!r} is not an IPv4 address or 'none'")
        out.add("ipv4_route", route4 or "none")
    elif route4:
        raise _fail("ipv4_route", "applies only when ipv4 is not 'none'")


def _ipv6_route(out: _Lines, ipv6: str, route6: str) -> None:
    if route6 in ("", "none"):
        return
    if not _is_static(ipv6):
        raise _fail("ipv6_route", "applies only to a static ipv6")
    if not _ip_ok(route6, 6) or "/" in route6:
        raise _fail("ipv6_route", f"{route6!r} is not an IPv6 address or 'none'")
    out.add("ipv6_route", route6)


def _dns(v: dict[str, Any], out: _Lines, *, dhcp: bool) -> None:
    domain = _one_line(v, "dns_domain")
    servers = [str(s).strip() for s in v["dns_nameservers"]]
    if dhcp and domain:
        raise _fail("dns_domain", "the installer does not ask it when DHCP configures the network")
    if domain:
        out.add("dns_domain", domain)
    if servers:
        bad = [s for s in servers if not (_ip_ok(s, 4) or _ip_ok(s, 6)) or "/" in s]
        if bad:
            raise _fail("dns_nameservers", f"not IP addresses: {', '.join(bad)}")
        out.add("dns_nameservers", " ".join(servers))


# -- accounts and services --------------------------------------------------------------------


def _root_and_services(v: dict[str, Any], out: _Lines) -> None:
    root_pw = _one_line(v, "root_password_hash")
    if not root_pw:
        raise _fail("root_password_hash", "required (a bcrypt hash or '*************')")
    check_password_value(root_pw, "root_password_hash")
    out.add("root_password", root_pw)
    if v["root_ssh_key"]:
        out.add("root_ssh_key", _one_line(v, "root_ssh_key"))
    if not v["sshd"]:
        out.add("sshd", "no")
    # Questions an arch never asks (arm64: X, com0) get no line: it would answer nothing.
    rel = out.rel
    if not v["x_window_system"] and "x_window_system" in rel:
        out.add("x_window_system", "no")
    if v["xenodm"]:
        if "xenodm" not in rel:
            raise _fail("xenodm", f"the OpenBSD/{rel.arch} installer has no xenodm question")
        out.add("xenodm", "yes")
    if "com0_console" not in rel:
        pass  # the arch sets its console itself (arm64: md_consoleinfo)
    elif not v["com0_console"]:
        out.add("com0_console", "no")
    elif int(v["com0_speed"]) != 115200:
        out.add("com0_speed", str(int(v["com0_speed"])))


def _user(v: dict[str, Any], out: _Lines) -> None:
    """The user account, then root's SSH login (asked after it)."""
    login = _one_line(v, "user_name")
    if login:
        _user_lines(v, out, login)
    else:
        for name in ("user_fullname", "user_password_hash", "user_ssh_key"):
            if v[name]:
                raise _fail(name, "needs user_name")
    if v["root_ssh_login"] != "no":
        if not v["sshd"]:
            raise _fail("root_ssh_login", "asked only when sshd is enabled")
        out.add("root_ssh_login", v["root_ssh_login"])


def _user_lines(v: dict[str, Any], out: _Lines, login: str) -> None:
    if login in RESERVED_LOGINS or not LOGIN.match(login) or len(login) > 31:
        raise _fail("user_name", f"{login!r} is not a usable login ([a-z][-a-z0-9_]*, <= 31)")
    if login in ("n", "no", "y", "yes"):  # the installer reads these as answers
        raise _fail("user_name", f"{login!r} reads as an answer to 'Setup a user?'")
    out.add("user_setup", login)
    fullname = _one_line(v, "user_fullname")
    if fullname and fullname != login:
        if any(c in fullname for c in ":&,") or len(fullname) > 100:
            raise _fail("user_fullname", "no ':', '&' or ',', at most 100 characters")
        out.add("user_fullname", fullname, login=login)
    user_pw = _one_line(v, "user_password_hash") or LOCKED
    check_password_value(user_pw, "user_password_hash")
    out.add("user_password", user_pw, login=login)
    if v["user_ssh_key"]:
        out.add("user_ssh_key", _one_line(v, "user_ssh_key"), login=login)


def _timezone(v: dict[str, Any], rel: Release, out: _Lines) -> None:
    tz = _one_line(v, "timezone")
    if (
        not tz
        or not ZONE.match(tz)
        or tz.rstrip("/") in rel.zone_dirs
        or not known_timezone(tz, rel)
    ):
        raise _fail("timezone", f"{tz!r} is not a full timezone name (e.g. UTC, Europe/Berlin)")
    out.add("timezone", tz.rstrip("/"))


# -- disks ------------------------------------------------------------------------------------


def _disks(
    v: dict[str, Any], rel: Release, out: _Lines, *, networked: bool, http_base: str, efi: bool
) -> None:
    disk = _one_line(v, "root_disk")
    if disk:
        if not re.fullmatch(r"[a-z]{2,}\d+|[0-9a-f]{16}", disk):
            raise _fail("root_disk", f"{disk!r} is not a disk name (sd0, wd0) or a DUID")
        out.add("root_disk", disk)
    encrypted = _encryption(v, rel, out)
    _partitioning(v, rel, out, encrypted=encrypted, efi=efi)
    if v["disklabel_layout"]:
        if not networked:
            raise _fail("disklabel_layout", "the template is fetched over HTTP: needs a network")
        render_disklabel(v["disklabel_layout"])  # validate now, not at build time
        out.add("disklabel_template", http_base.rstrip("/") + "/disklabel")


def _partitioning(
    v: dict[str, Any], rel: Release, out: _Lines, *, encrypted: bool, efi: bool
) -> None:
    """The disk question's answer; none for "" (the installer's default for the machine)."""
    value = v["disk_partitioning"]
    problem = partitioning_problem(value, rel, efi=efi)
    if problem:
        raise _fail("disk_partitioning", f'"{value}": {problem}')
    answer = PARTITIONING_ANSWERS.get(value)
    if answer is None:
        return
    # With encryption the installer asks for the physical disk (the crypto chunk), then
    # again for the softraid volume (install.sub encrypt_root, configure_disk): one answer
    # each, or the volume would get the installer's default.
    for _disk in range(2 if encrypted else 1):
        out.add("disk_partitioning", answer)
        if answer == "gpt":
            out.add("gpt_proceed", "yes")  # asked only off EFI; unused otherwise


def _encryption(v: dict[str, Any], rel: Release, out: _Lines) -> bool:
    """The encryption answers; True when the root disk is encrypted."""
    passphrase = str(v["encrypt_passphrase"])
    if not passphrase:
        return False
    if not rel.autoinstall_encryption or "new_passphrase" not in rel:
        raise _fail("encrypt_passphrase", f"OpenBSD {rel.release} cannot encrypt unattended")
    if "\n" in passphrase or "\r" in passphrase:
        raise _fail("encrypt_passphrase", "must be a single line")
    out.add("encrypt_root", "p")
    out.lines.append(f"{canonical_key(rel['new_passphrase'].text)} = {passphrase}")
    return True


# -- sets -------------------------------------------------------------------------------------


def _sets(v: dict[str, Any], rel: Release, out: _Lines, *, networked: bool, http_base: str) -> None:
    """The first round (the chosen location), then the site round over the build's HTTP."""
    location = v["sets_location"]
    site, per_host = bool(v["site_set"]), bool(v["site_set_per_host"])
    if per_host and not site:
        raise _fail("site_set_per_host", "needs site_set = true")
    if site and not networked:
        raise _fail("site_set", "the site set is served over HTTP: needs a network")
    site_names_line = site and not per_host
    proxy = _one_line(v, "http_proxy")
    if proxy and location != "http":
        raise _fail("http_proxy", "applies only to sets_location = http")
    sets = str(v["sets"]).strip()
    selected = select_sets(rel, sets)
    missing = [s for s in rel.required_sets() if s not in selected]
    if missing:
        raise _fail("sets", f"{sets!r} leaves out {', '.join(missing)}, which an install needs")

    out.add("sets_location", location, locations="")
    if location in ("cd0", "disk"):
        _local_location(v, out, location)
    else:
        _http_location(v, rel, out, networked=networked, proxy=proxy, site=site)
    if sets:
        out.add("set_names", sets)
    if site_names_line:
        out.add("set_names", "done")
    if location != "http":  # over http SHA256.sig is there: the installer verifies
        out.add("unverified", "yes", issue="Directory does not contain SHA256.sig")
    if site:
        _site_round(out, http_base, proxy=proxy, names_line=site_names_line)


def _local_location(v: dict[str, Any], out: _Lines, location: str) -> None:
    """cd0 or disk: the sets' disk (disk only) and path, where given."""
    if location == "disk" and v["sets_disk"]:
        out.add("sets_disk", _one_line(v, "sets_disk"))
    if v["sets_path"]:
        out.add("sets_path", _one_line(v, "sets_path"))


def _http_location(
    v: dict[str, Any], rel: Release, out: _Lines, *, networked: bool, proxy: str, site: bool
) -> None:
    if not networked:
        raise _fail("sets_location", "http needs a network (ipv4 or ipv6)")
    server = _one_line(v, "sets_http_server")
    local = is_build_server(server)
    if local:  # the build's own server, with the sets fetch-iso --sets cached
        server = BUILD_SERVER
    if not _SERVER.match(expand_templates(server)):
        raise _fail("sets_http_server", f"{server!r} is not host[:port] (http:// allowed)")
    if proxy:
        out.add("http_proxy", proxy)
    out.add("http_server", server)
    directory = _one_line(v, "sets_http_directory")
    if local and not directory:
        directory = server_directory(rel.release, rel.arch)
    # A later site round writes its own directory: this round must not leave it unset.
    if directory or site:
        out.add("http_directory", directory or rel["http_directory"].default)


def _site_round(out: _Lines, http_base: str, *, proxy: str, names_line: bool) -> None:
    server, base_path = _split_base(http_base)
    out.add("sets_location", "http", locations="")
    if proxy:
        out.add("http_proxy", "none")
    out.add("http_server", server)
    out.add("http_directory", f"{base_path}/{SITE_SUBDIR}" if base_path else SITE_SUBDIR)
    out.add("install_missing", "yes")
    if names_line:
        out.add("set_names", "site*")
    out.add("unverified", "yes", issue="Directory does not contain SHA256.sig")
