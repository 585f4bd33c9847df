"""Is an answer one the installer takes? One function per question that checks values.

Used both for lines the simulated installer consumes and for lines it never reaches, so a
hand-written file gets its mistakes named even on questions this machine would not ask.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable

from packwrap.autoinstall.matching import expand_templates, has_template
from packwrap.autoinstall.passwords import LOCKED, is_bcrypt, is_installer_hash
from packwrap.autoinstall.release import Prompt, Release

LOGIN = re.compile(r"^[a-z][-a-z0-9_]*$")
RESERVED_LOGINS = ("root", "daemon", "operator", "bin", "build", "sshd", "www", "nobody", "ftp")
ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*/?$")


def _ip(value: str, version: int, *, cidr: bool = True) -> bool:
    try:
        if "/" in value and cidr:
            return ipaddress.ip_interface(value).version == version
        return ipaddress.ip_address(value).version == version
    except ValueError:
        return False


def _ipv4_address(v: str, r: Release) -> str | None:
    if v in ("none", "a", "autoconf", "dhcp") or _ip(v, 4):
        return None
    return f"{v!r} is not an IPv4 address, 'autoconf' or 'none': the autoinstall aborts"


def _ipv6_address(v: str, r: Release) -> str | None:
    if v in ("none", "a", "autoconf") or _ip(v, 6):
        return None
    return f"{v!r} is not an IPv6 address, 'autoconf' or 'none': the autoinstall aborts"


def _netmask(v: str, r: Release) -> str | None:
    try:
        ipaddress.IPv4Network(f"0.0.0.0/{v}")
        return None
    except ValueError:
        return f"{v!r} is not a netmask (e.g. 255.255.255.0): the autoinstall aborts"


def _prefixlen(v: str, r: Release) -> str | None:
    if v.isascii() and v.isdigit() and len(v) <= 3 and int(v) <= 128:
        return None
    return f"{v!r} is not an IPv6 prefix length (0-128): the autoinstall aborts"


def _route4(v: str, r: Release) -> str | None:
    if v == "none" or _ip(v, 4, cidr=False):
        return None
    return f"{v!r} is not an IPv4 address or 'none': the route cannot be set"


def _route6(v: str, r: Release) -> str | None:
    if v == "none" or _ip(v, 6, cidr=False):
        return None
    return f"{v!r} is not an IPv6 address or 'none': the route cannot be set"


def _nameservers(v: str, r: Release) -> str | None:
    if v == "none":
        return None
    bad = [t for t in v.split() if not (_ip(t, 4, cidr=False) or _ip(t, 6, cidr=False))]
    return f"nameserver(s) {', '.join(bad)} are not IP addresses" if bad else None


def _login(v: str, r: Release) -> str | None:
    if v in ("n", "no", "y", "yes"):
        return None
    if v in RESERVED_LOGINS or not LOGIN.match(v) or len(v) > 31:
        return (
            f"{v!r} is not a usable loginname (lower case [a-z][-a-z0-9_]*, at most 31 "
            "characters, not a system account): the installer sets up no user"
        )
    return None


def _fullname(v: str, r: Release) -> str | None:
    if any(c in v for c in ":&,"):
        return "a full name cannot contain ':', '&' or ',': the installer uses the login instead"
    if len(v) > 100:
        return "a full name is at most 100 characters: the installer uses the login instead"
    return None


@functools.cache
def _known_zones() -> frozenset[str]:
    """The IANA zones this host knows (OpenBSD ships the same database); empty if none."""
    try:
        import zoneinfo

        return frozenset(zoneinfo.available_timezones())
    except Exception:  # no tzdata here: skip the check rather than guess
        return frozenset()


def known_timezone(v: str, r: Release) -> bool:
    zones = _known_zones()
    v = v.rstrip("/")
    return not zones or v in zones or v in r.zone_dirs


def _timezone(v: str, r: Release) -> str | None:
    if v == "?":
        return None
    if not ZONE.match(v) or not known_timezone(v, r):
        return f"{v!r} is not a timezone name (e.g. UTC, Europe/Berlin): the installer asks again"
    return None


def _hostname(v: str, r: Release) -> str | None:
    if re.search(r"[\s\x00-\x1f\x7f]", v):
        return "a hostname cannot contain blanks or control characters: the autoinstall aborts"
    return None


def _template_url(v: str, r: Release) -> str | None:
    if v == "none" or re.match(r"^(https?|ftp|file)://\S+$", v):
        return None
    return f"{v!r} is not a URL: 'No autopartitioning template found.' aborts the install"


def _layout(v: str, r: Release) -> str | None:
    if v[:1] in ("e", "E", "c", "C"):
        return "(E)dit and (C)ustom start the interactive disklabel editor: an autoinstall hangs"
    return None


def _partitioning(v: str, r: Release) -> str | None:
    if v[:1] in ("e", "E"):
        return "(E)dit starts fdisk's interactive editor: an autoinstall hangs"
    return None


VALUE_CHECKS: dict[str, Callable[[str, Release], str | None]] = {
    "hostname": _hostname,
    "ipv4_address": _ipv4_address,
    "ipv4_netmask": _netmask,
    "ipv6_address": _ipv6_address,
    "ipv6_prefixlen": _prefixlen,
    "ipv4_route": _route4,
    "ipv6_route": _route6,
    "dns_nameservers": _nameservers,
    "user_setup": _login,
    "user_setup_again": _login,
    "user_fullname": _fullname,
    "timezone": _timezone,
    "disklabel_template": _template_url,
    "disklabel_layout": _layout,
    "disk_partitioning": _partitioning,
}


def password_problem(value: str) -> tuple[str, str] | None:
    if has_template(value) or value == LOCKED or is_bcrypt(value):
        return None
    if is_installer_hash(value):
        return (
            "warning",
            "the installer keeps this value as a hash, but it is not a well-formed bcrypt "
            "hash with cost 10+: nobody may be able to log in",
        )
    return (
        "error",
        "plaintext password: the installer would hash it, but the plaintext sits in a served "
        "file; write a bcrypt hash ($2b$..., `encrypt -b a` or packwrap's hash_password) "
        f"or '{LOCKED}'",
    )


def value_problem(prompt: Prompt, raw: str, release: Release) -> tuple[str, str] | None:
    """(severity, message) when `raw` is not an answer `prompt` takes, else None."""
    if prompt.kind == "password":
        return password_problem(raw)
    value = expand_templates(raw)
    check = VALUE_CHECKS.get(prompt.id)
    message = check(value, release) if check else None
    if message:
        return ("error", message)
    if prompt.kind == "yesno":
        if value.lower() not in ("y", "yes", "n", "no"):
            return ("error", f"{raw!r} is not yes or no: the autoinstall aborts at this question")
        return None
    if prompt.kind == "choice" and not prompt.accepts(value):
        allowed = ", ".join(prompt.choices)
        then = "" if prompt.on_invalid == "abort" else "; the installer asks again"
        return ("error", f"{raw!r} is not one of the allowed answers ({allowed}){then}")
    if prompt.accept and not prompt.accepts(value):
        return ("error", f"{raw!r} is not an answer this question takes")
    return None
