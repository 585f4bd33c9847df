"""The openbsd-vmm source's options: the Go plugin's (packer-builder-openbsd-vmm), same names and
meaning, its pre-PR#8 names as aliases, the SDK blocks every builder accepts, and
packwrap's own.

Decisions for templates written for the talk-era plugin (the seed demo: no
vm_template, no boot_device, ssh_username without credentials):
- `vm_template` is optional. Without it vmctl starts the VM without `-t`, which
  vmd allows only for root: run as root or set `doas = true` (a warning says so at
  build time). With it, an unprivileged user named in the parent's
  `allow instance { ... owner <user> }` needs nothing.
- `boot_device` unset: `net` when `boot` (a kernel such as bsd.rd) is given, `cdrom`
  when only `cdrom` is given; one of the three is required, so every install boot
  passes -B. A VM started without -B is *restarted* by vmd when the installer
  reboots, so the install would never be seen to end (the Go plugin at HEAD then
  polls forever; the talk-era plugin always passed `-B net`).
- `communicator` unset: provisioning (second boot from disk, SSH) happens only when
  the build has provisioners; an install-only template like the seed builds with a
  single boot. `communicator = "ssh"` always boots the disk again and connects.
  Credentials: at most one of ssh_password, ssh_private_key_file, ssh_agent_auth
  (the Go plugin demanded exactly one; packwrap makes a temporary key when none).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from packwrap.sdk import (
    BOOL,
    DURATION,
    STRING,
    WHOLE_MIB,
    Config,
    Option,
    Schema,
    Size,
    guest_network,
    parse_size,
    wants_final_steps,
)
from packwrap.sdk import common_options as common

if TYPE_CHECKING:
    from packwrap.sdk import State

FORMATS = ("raw", "qcow2")
BOOT_DEVICES = ("cdrom", "disk", "net")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,62}$")

VMM_OPTIONS = [
    Option("vm_name", required=True, help="VM name (vmctl start NAME), disk and log base name"),
    Option("vm_template", help="vm.conf(5) parent VM (vmctl start -t); see docs/openbsd-hosts.md"),
    Option("boot_device", choices=BOOT_DEVICES, help="vmctl start -B for the install boot"),
    Option("boot", aliases=("bios",), help="vmctl start -b: kernel (bsd.rd) for the install"),
    Option("cdrom", aliases=("iso_image",), help="vmctl start -r: ISO for the install boot"),
    Option("disk_format", default="raw", choices=FORMATS),
    Option("disk_base", help="vmctl create -b: qcow2 base image"),
    Option(
        "use_backing_file",
        BOOL,
        default=False,
        help="install cache hit: keep the image a `vmctl create -b` overlay of the cache entry",
    ),
    Option("disk_size", parse=parse_size, help="vmctl create -s, e.g. 1500M or 20G; bare = MiB"),
    Option("memory", aliases=("ram_size",), parse=parse_size, help="vmctl start -m, e.g. 1G"),
    Option("log_directory", default="", help="console log <log_directory>/<vm_name>.log"),
    Option("output_directory", required=True),
    Option("user_data", ignored=True),
    Option("console", ignored=True),  # pre-PR#8: the console was always used
    Option("gen_files_extension", default="pkr.in"),
    Option("gen_files_pattern", help="generated files' name prefix; default vm_name"),
    # packwrap's own
    Option("vmctl_path", help="vmctl to run; default $PACKWRAP_VMCTL, else vmctl on PATH"),
    Option("doas", BOOL, default=False, help="run vmctl through `doas -n` (never prompts)"),
    Option("install_timeout", DURATION, default=3600.0, help="limit for the install boot"),
    Option("ssh_host_key_fingerprint", STRING, help="pin the guest's SSH host key"),
]

# `communicator` is redeclared with no default so "unset" can be told from "ssh".
_COMM = [
    Option("communicator", STRING, None, choices=("ssh", "none")),
    *[o for o in common.COMM_OPTIONS if o.name != "communicator"],
]

Problem = Callable[[str, "str | None"], None]


def _check(config: Config, problem: Problem) -> None:
    if not _NAME.fullmatch(config.vm_name or ""):
        problem(
            f"vm_name {config.vm_name!r}: vmctl(8) names are letters, digits, '.', '-', '_', "
            "start with a letter, at most 63 characters",
            "vm_name",
        )
    if config.disk_base and config.disk_format != "qcow2":
        problem('disk_base needs disk_format = "qcow2" (vmctl create -b)', "disk_base")
    if not config.disk_base and not config.disk_size:
        problem("disk_size must be specified when there is no disk_base", "disk_size")
    for name in ("disk_size", "memory"):
        size = config.get(name)
        if size is not None and not size.whole_mib:  # vmctl would round it down, warning
            problem(f"{name} {str(size)!r}: {WHOLE_MIB}", name)
    if config.boot_device == "net" and not config.boot:
        problem('boot_device = "net" needs boot (a kernel such as bsd.rd)', "boot_device")
    if not (config.boot or config.cdrom or config.boot_device):
        # The install boot must pass -B: only then does vmd end the VM at the installer's
        # reboot, and an instance inherits neither `boot device` nor `boot` (vmd.c
        # vm_instance), so vm_template alone would restart the installer until
        # install_timeout.
        problem(
            "the install cannot end: set boot (bsd.rd), cdrom (installNN.iso) or "
            "boot_device, so vmctl start gets -B (a vm.conf template's boot device and "
            "kernel are not passed to its instances)",
            None,
        )
    if config.boot_device == "cdrom" and not (config.cdrom or config.vm_template):
        problem('boot_device = "cdrom" needs cdrom (an installNN.iso)', "boot_device")
    if config.install_timeout is not None and config.install_timeout <= 0:
        problem("install_timeout must be positive", "install_timeout")
    credentials = [n for n in ("ssh_password", "ssh_private_key_file") if config.get(n)]
    if config.get("ssh_agent_auth"):
        credentials.append("ssh_agent_auth")
    if len(credentials) > 1:
        problem(f"set only one of {', '.join(credentials)}", credentials[-1])
    if config.gen_files_pattern is None:
        config["gen_files_pattern"] = config.vm_name
    config["gen_files_extension"] = (config.gen_files_extension or "pkr.in").lstrip(".")


def _check_guest_network(config: Config, problem: Problem) -> None:
    """vmd's local interface is a /31 per VM: a static address elsewhere cannot reach the
    build's HTTP server on the tap (guest_network.vmd_problem)."""
    try:
        static = guest_network.static_ipv4_of(config)
    except ValueError:
        return  # guest_network.check reported it
    why = guest_network.vmd_problem(static) if static else None
    if why:
        problem(f"guest_ipv4: {why}", "guest_ipv4")


class VmmConfig(common.CommonConfig):
    """The prepared openbsd-vmm options, typed (see VMM_OPTIONS)."""

    vm_name: str
    vm_template: str | None
    boot_device: str | None
    boot: str | None
    cdrom: str | None
    disk_format: str
    disk_base: str | None
    use_backing_file: bool
    disk_size: Size | None  # None only with disk_base
    memory: Size | None  # None: the vm_template's (or vmd's) memory
    log_directory: str
    output_directory: str
    user_data: str | None
    console: str | None
    gen_files_extension: str
    gen_files_pattern: str
    vmctl_path: str | None
    doas: bool
    install_timeout: float
    guest_ipv4: str | None
    guest_ipv4_netmask: str | None
    guest_ipv4_route: str | None


SCHEMA: Schema[VmmConfig] = Schema(
    [
        *VMM_OPTIONS,
        *common.HTTP_OPTIONS,
        *common.BOOT_OPTIONS,
        *common.SHUTDOWN_OPTIONS,
        *_COMM,
        *guest_network.OPTIONS,
        *common.CACHE_OPTIONS,
    ],
    [
        _check,
        *guest_network.CHECKS,
        _check_guest_network,
        *common.HTTP_CHECKS,
        *common.BOOT_CHECKS,
        *common.SHUTDOWN_CHECKS,
        *common.COMM_CHECKS,
    ],
    VmmConfig,
)


def install_boot_device(config: VmmConfig) -> str | None:
    """-B for the install boot (see the module docstring for the defaults)."""
    if config.boot_device:
        return config.boot_device
    if config.boot:
        return "net"
    if config.cdrom:
        return "cdrom"
    return None


def wants_provisioning(config: VmmConfig, has_provisioners: bool) -> bool:
    """Second boot from disk + SSH: communicator "ssh", or unset with provisioners or a
    final step (syspatch, build_record, generalize)."""
    if config.communicator is None:
        return has_provisioners or wants_final_steps(config)
    return config.communicator == "ssh"


def media_path(value: str | None, template_dir: str | os.PathLike[str]) -> str | None:
    """A local path for vmctl (which gets no shell): `~` expanded, relative paths taken
    from the working directory as Packer does, else from the template's directory."""
    if not value:
        return value
    path = os.path.expanduser(value)
    if not os.path.isabs(path) and not os.path.exists(path):
        candidate = os.path.join(os.fspath(template_dir), path)
        if os.path.exists(candidate):
            path = candidate
    return os.path.abspath(path)


def config_of(state: State) -> VmmConfig:
    """The build's VmmConfig (the session prepared it with SCHEMA): the core's one
    config_of (packwrap/build/state.py), bound to this builder's type."""
    from packwrap.sdk import config_of as typed_config_of

    return typed_config_of(state, VmmConfig)
