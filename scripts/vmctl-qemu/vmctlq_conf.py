"""vm.conf(5) as vmd 7.6 reads it, for the stand-in: the grammar subset packwrap's hosts
use, and the checks vmd applies while parsing (so a file vmd refuses is refused here).

Rules taken from OpenBSD's source (read in the search index: usr.sbin/vmd/parse.y and
vmd.c `vm_register`/`vm_instance`/`vm_checkperm`, torvalds/linux commit c5f58598: vmd.c
1.169 of 2025-08, newer than 7.6's 1.160, which the index does not hold; notes taken
from 1.160 record the same rules):
- every `vm` block is registered as it is parsed; one without `disk` or `cdrom` fails
  ("no kernel or disk/cdrom specified": `boot` alone does not count), and the whole
  file is refused (`vmctl reload`: "command failed");
- `owner user[:group]` / `socket owner user[:group]`: an unknown user or group is an error;
  a vm's owner defaults to uid 0 / no group, the socket's to root:wheel (gid 0);
- `allow instance { boot, cdrom, disk, interface, memory, instance, owner ID }`; without
  `owner` the instance owner stays uid 0 / gid 0 (parser default: members of wheel);
- `local prefix` must be an IPv4 prefix of at most /16.
Not modelled (refused with a clear error): macros, `include`, `vm ... instance ...`.
"""

from __future__ import annotations

import grp
import ipaddress
import os
import pwd
import re
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MEMORY = 512 << 20  # VM_DEFAULT_MEMORY
DEFAULT_PREFIX = "100.64.0.0/10"
INSTANCE_FLAGS = ("boot", "cdrom", "disk", "interface", "memory", "instance")
NO_GROUP = -1


class ConfError(Exception):
    """file:line: message (the text vmd logs)."""


@dataclass
class VmConf:
    name: str
    line: int
    disabled: bool = False
    disks: list[str] = field(default_factory=list)
    cdrom: str | None = None
    boot: str | None = None  # kernel path
    boot_device: str | None = None
    memory: int = 0
    nics: int = 0
    local_nics: int = 0
    owner_uid: int = 0
    owner_gid: int = NO_GROUP
    insflags: set[str] = field(default_factory=set)
    insowner_uid: int = 0  # parse.y zeroes the struct: uid 0, gid 0 (wheel)
    insowner_gid: int = 0


@dataclass
class VmdConf:
    path: str
    socket_uid: int = 0
    socket_gid: int = 0  # wheel
    local_prefix: str = DEFAULT_PREFIX
    vms: dict[str, VmConf] = field(default_factory=dict)


_TOKEN = re.compile(r'"([^"\n]*)"|([{},=;\n])|([^\s{},=;"#]+)')


def _tokens(text: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    line = 1
    for raw in text.splitlines():
        body = raw.split("#", 1)[0] if '"' not in raw else _strip_comment(raw)
        for m in _TOKEN.finditer(body):
            quoted, punct, word = m.groups()
            if quoted is not None:
                out.append(("s:" + quoted, line))
            elif punct is not None:
                out.append((punct, line))
            else:
                out.append(("w:" + word, line))
        out.append(("\n", line))
        line += 1
    return out


def _strip_comment(raw: str) -> str:
    inside = False
    for i, ch in enumerate(raw):
        if ch == '"':
            inside = not inside
        elif ch == "#" and not inside:
            return raw[:i]
    return raw


def owner_id(text: str, where: str) -> tuple[int, int]:
    """parse.y owner_id: `user`, `user:group`, `:group` or a number -> (uid, gid)."""
    if text.isdigit():
        return int(text), NO_GROUP
    user, _, group = text.partition(":")
    uid, gid = 0, NO_GROUP
    if user:
        try:
            uid = pwd.getpwnam(user).pw_uid
        except KeyError:
            raise ConfError(f"{where}: failed to get user: {user}") from None
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ConfError(f"{where}: failed to get group: {group}") from None
    return uid, gid


def scan_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)([BKMGT]?)", text.upper())
    if not m:
        raise ValueError(text)
    return int(m.group(1)) << {"": 20, "B": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2)]


class _Parser:
    def __init__(self, text: str, path: str):
        self.toks = _tokens(text)
        self.pos = 0
        self.path = path
        self.conf = VmdConf(path)

    def where(self) -> str:
        return f"{self.path}:{self.toks[min(self.pos, len(self.toks) - 1)][1]}"

    def peek(self) -> str:
        return self.toks[self.pos][0] if self.pos < len(self.toks) else ""

    def take(self) -> str:
        tok = self.peek()
        self.pos += 1
        return tok

    def word(self) -> str:
        tok = self.take()
        if not tok.startswith(("w:", "s:")):
            self.pos -= 1
            raise ConfError(f"{self.where()}: syntax error")
        return tok[2:]

    def skip_nl(self) -> None:
        while self.peek() == "\n":
            self.pos += 1

    def parse(self) -> VmdConf:
        while self.pos < len(self.toks):
            self.skip_nl()
            if self.pos >= len(self.toks):
                break
            kw = self.word()
            if kw == "vm":
                self.vm()
            elif kw == "socket" and self.peek() == "w:owner":
                self.take()
                uid, gid = owner_id(self.word(), self.where())
                self.conf.socket_uid, self.conf.socket_gid = uid, 0 if gid == NO_GROUP else gid
            elif kw == "local" and self.peek() == "w:prefix":
                self.take()
                self.prefix(self.word())
            elif kw in ("switch", "include") or self.peek() == "=":
                raise ConfError(f"{self.where()}: {kw}: not modelled by the vmctl stand-in")
            else:
                raise ConfError(f"{self.where()}: syntax error")
            if self.peek() not in ("\n", ""):
                raise ConfError(f"{self.where()}: syntax error")
        return self.conf

    def prefix(self, text: str) -> None:
        try:
            net = ipaddress.IPv4Network(text, strict=False)
        except ValueError:
            raise ConfError(f"{self.where()}: invalid local prefix: {text}") from None
        if net.prefixlen > 16:  # config.c parse_prefix4: room for id << 8 | (idx+1)*2
            raise ConfError(f"{self.where()}: invalid local prefix: prefix is too small")
        self.conf.local_prefix = str(net)

    def vm(self) -> None:
        line = self.toks[self.pos][1]
        name = self.word()
        if self.peek() == "w:instance":
            raise ConfError(f"{self.where()}: vm instance blocks: not modelled by the stand-in")
        vm = VmConf(name, line)
        self.skip_nl()
        if self.take() != "{":
            raise ConfError(f"{self.where()}: syntax error")
        flags: set[str] = set()
        while True:
            self.skip_nl()
            if self.peek() == "}":
                self.take()
                break
            if not self.peek():
                raise ConfError(f"{self.where()}: syntax error")
            self.vm_option(vm, flags)
            if self.peek() not in ("\n", "}"):
                raise ConfError(f"{self.where()}: syntax error")
        # vm_register(..., uid 0) as parse.y does at the block's end
        if not vm.disks and not vm.cdrom:
            raise ConfError(
                f'{self.path}:{line}: vm "{name}" failed: Invalid argument '
                "(vmd: no kernel or disk/cdrom specified)"
            )
        if name in self.conf.vms:
            return  # vmd skips a second block of the same name ("already exists")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", name):
            raise ConfError(f'{self.path}:{line}: vm "{name}" failed: Invalid argument')
        vm.memory = vm.memory or DEFAULT_MEMORY
        self.conf.vms[name] = vm

    def vm_option(self, vm: VmConf, flags: set[str]) -> None:
        kw = self.word()
        if kw in ("enable", "disable"):
            vm.disabled = kw == "disable"
        elif kw == "disk":
            vm.disks.append(self.word())
            if self.peek() == "w:format":
                self.take()
                if self.word() not in ("raw", "qcow2"):
                    raise ConfError(f"{self.where()}: unrecognized disk format")
        elif kw == "cdrom":
            if vm.cdrom:
                raise ConfError(f"{self.where()}: cdrom specified more than once")
            vm.cdrom = self.word()
        elif kw == "boot" and self.peek() == "w:device":
            self.take()
            device = self.word()
            if device not in ("cdrom", "disk", "net"):
                raise ConfError(f"{self.where()}: syntax error")
            vm.boot_device = device
        elif kw == "boot":
            path = self.word()
            if not os.path.exists(path):
                raise ConfError(f"{self.where()}: kernel path not found: No such file or directory")
            vm.boot = os.path.realpath(path)
        elif kw == "memory":
            value = self.word()
            try:
                vm.memory = scan_size(value)
            except ValueError:
                raise ConfError(f"{self.where()}: failed to parse size: {value}") from None
        elif kw == "owner":
            vm.owner_uid, vm.owner_gid = owner_id(self.word(), self.where())
        elif kw == "interfaces":
            vm.nics = int(self.word())
        elif kw in ("local", "interface"):
            if kw == "local" and self.word() != "interface":
                raise ConfError(f"{self.where()}: syntax error")
            vm.nics += 1
            vm.local_nics += kw == "local"
            self.skip_block()
        elif kw == "allow":
            if self.word() != "instance":
                raise ConfError(f"{self.where()}: syntax error")
            self.instance_flags(vm)
        elif kw in ("sev", "seves"):
            pass
        else:
            raise ConfError(f"{self.where()}: syntax error")

    def skip_block(self) -> None:
        while self.peek() not in ("\n", "}", "", "{"):
            self.take()
        if self.peek() == "{":
            while self.take() != "}":
                if not self.peek():
                    raise ConfError(f"{self.where()}: syntax error")

    def instance_flags(self, vm: VmConf) -> None:
        braced = self.peek() == "{"
        if braced:
            self.take()
        while True:
            if braced:
                self.skip_nl()
            if braced and self.peek() == "}":
                self.take()
                return
            flag = self.word()
            if flag == "owner":
                vm.insowner_uid, vm.insowner_gid = owner_id(self.word(), self.where())
            elif flag in INSTANCE_FLAGS:
                vm.insflags.add(flag)
            else:
                raise ConfError(f"{self.where()}: syntax error")
            if not braced:
                return
            if self.peek() == ",":
                self.take()


def parse(text: str, path: str = "/etc/vm.conf") -> VmdConf:
    """The configuration vmd would load, or ConfError with vmd's file:line message."""
    return _Parser(text, path).parse()


def parse_file(path: str | os.PathLike[str]) -> VmdConf:
    p = Path(path)
    return parse(p.read_text(), str(p))
