"""Options every builder accepts (the SDK's HTTPConfig, BootConfig, shutdown and comm blocks).

A builder's schema is `Schema([*OWN, *HTTP_OPTIONS, *BOOT_OPTIONS, ...],
[*OWN_CHECKS, *HTTP_CHECKS, *BOOT_CHECKS, ...])`. Durations arrive as seconds
(float); an unset duration is None where the effective default depends on other
options -- use the helpers below (boot_wait_seconds, key_interval_seconds, ...)
rather than reading those raw values.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from packwrap.build import bootcommand
from packwrap.config.schema import ANY, BOOL, DURATION, INT, LIST, MAP, STRING, Config, Option
from packwrap.durations import parse_duration
from packwrap.errors import PackwrapError

Problem = Callable[[str, "str | None"], None]

# --- HTTP docroot ----------------------------------------------------------------------

HTTP_OPTIONS = [
    Option("http_directory", STRING, None, help="Directory served to the guest over HTTP."),
    Option("http_content", MAP, None, help='Map of "/path" -> file content served over HTTP.'),
    Option("http_port_min", INT, 8000, help="Lowest port for the HTTP server."),
    Option("http_port_max", INT, 9000, help="Port range end (exclusive unless equal to min)."),
    Option(
        "http_bind_address",
        STRING,
        None,
        help="Address the HTTP server listens on (default: what the builder needs, "
        "127.0.0.1 unless its network mode requires otherwise).",
    ),
    Option(
        "http_interface",
        STRING,
        None,
        help="Listen on this host interface's first IPv4 address (the SDK's meaning; "
        "instead of http_bind_address).",
    ),
    Option(
        "http_network_protocol",
        STRING,
        "tcp",
        choices=("tcp", "tcp4", "tcp6"),
        help="The listener's address family: tcp (the address's) or tcp4 (tcp6 is refused: "
        "guests are told an IPv4 {{ .HTTPIP }}).",
    ),
]


def _check_http(config: CommonConfig, problem: Problem) -> None:
    if config.http_directory and config.http_content:
        problem("set either http_directory or http_content, not both", "http_content")
    for key in config.http_content or {}:
        if not str(key).startswith("/"):
            problem(f"http_content key {key!r} must start with '/'", "http_content")
    lo, hi = config.http_port_min, config.http_port_max
    for name, value in (("http_port_min", lo), ("http_port_max", hi)):
        if not 0 <= value <= 65535:
            problem(f"{name} {value} is not a TCP port (0-65535)", name)
    if lo > hi:
        problem(
            f"http_port_min ({lo}) must be less than or equal to http_port_max ({hi})",
            "http_port_min",
        )
    if config.http_interface and config.http_bind_address:
        # the SDK's HTTPConfig.Prepare
        problem("either http_interface or http_bind_address can be specified", "http_interface")
    if config.http_network_protocol == "tcp6":
        # Both builders tell the guest an IPv4 address ({{ .HTTPIP }}: QEMU's user network
        # or bridge, vmd's tap): an IPv6-only listener would never answer it.
        problem(
            'http_network_protocol "tcp6": the guest is told an IPv4 address for the HTTP '
            'server ({{ .HTTPIP }}), which an IPv6-only listener does not answer; use "tcp" '
            'or "tcp4"',
            "http_network_protocol",
        )
    elif config.http_bind_address:
        from packwrap.build.http_server import listener_family

        try:
            listener_family(config.http_bind_address, config.http_network_protocol)
        except PackwrapError as exc:
            problem(exc.message, "http_network_protocol")


HTTP_CHECKS = [_check_http]


def http_enabled(config: CommonConfig) -> bool:
    """Whether the build needs an HTTP server (Packer: http_directory or http_content set)."""
    return bool(config.http_directory or config.http_content)


# --- boot command --------------------------------------------------------------------


def _secret_indexes(value: object) -> list[int]:
    """boot_secret_elements' parse hook: a list of indexes (numbers or digit strings)."""
    if not isinstance(value, list) or not all(
        isinstance(i, int)
        and not isinstance(i, bool)
        or (isinstance(i, str) and i.isascii() and i.isdigit() and len(i) < 10)
        for i in value
    ):
        raise ValueError("expected a list of boot_command indexes")
    return [int(i) for i in value]


BOOT_OPTIONS = [
    Option("boot_command", LIST, [], help="Keys typed on the console after boot_wait."),
    Option(
        "boot_wait",
        DURATION,
        None,
        help="Wait before typing (Packer: default 10s, 0 means default, negative means 0; "
        "packwrap: default 0 when boot_expect[0] is set).",
    ),
    Option("boot_key_interval", DURATION, None, help="Pause between keys (serial default 0)."),
    Option("boot_keygroup_interval", DURATION, None, help="Pause between boot_command elements."),
    Option(
        "boot_expect",
        LIST,
        [],
        help="packwrap: text to wait for on the serial console before typing each "
        'boot_command element ("" = no wait).',
    ),
    Option("boot_expect_timeout", DURATION, 300.0, help="packwrap: timeout of each boot_expect."),
    Option("boot_echo_check", BOOL, True, help="packwrap: check the echo of typed lines."),
    Option(
        "boot_secret_elements",
        ANY,
        [],
        parse=_secret_indexes,
        help="packwrap: indexes of boot_command elements that are secret (masked, no echo check).",
    ),
]


def _check_boot(config: CommonConfig, problem: Problem) -> None:
    for message in bootcommand.validate(config.boot_command or []):
        problem(message, "boot_command")
    n = len(config.boot_command or [])
    if len(config.boot_expect or []) > n:
        problem(
            f"boot_expect has {len(config.boot_expect)} entries but boot_command only {n}",
            "boot_expect",
        )
    if config.boot_expect_timeout is not None and config.boot_expect_timeout <= 0:
        problem("boot_expect_timeout must be positive", "boot_expect_timeout")
    intervals = {
        "boot_key_interval": config.boot_key_interval,
        "boot_keygroup_interval": config.boot_keygroup_interval,
    }
    for name, value in intervals.items():
        if value is not None and value < 0:
            problem(f"{name} must not be negative", name)
    for i in config.boot_secret_elements:
        if not 0 <= i < n:
            problem(f"boot_secret_elements: no boot_command element {i}", "boot_secret_elements")


BOOT_CHECKS = [_check_boot]


def boot_wait_seconds(config: CommonConfig) -> float:
    """Effective boot_wait: Packer's rules (unset/0 -> 10 s, negative -> 0), except that a
    packwrap template waiting for the console first (boot_expect[0]) needs no fixed sleep."""
    raw = config.boot_wait
    if raw is None:
        expects = config.boot_expect
        return 0.0 if expects and expects[0] else 10.0
    if raw == 0:
        return 10.0
    return max(0.0, raw)


def key_interval_seconds(config: CommonConfig, env: Mapping[str, str] | None = None) -> float:
    """boot_key_interval, else PACKER_KEY_INTERVAL, else 0: a serial line needs no pacing."""
    if config.boot_key_interval is not None:
        return config.boot_key_interval
    env = os.environ if env is None else env
    raw = env.get("PACKER_KEY_INTERVAL")
    if raw:
        try:
            return max(0.0, parse_duration(raw, what="PACKER_KEY_INTERVAL"))
        except PackwrapError:
            return 0.0
    return 0.0


def keygroup_interval_seconds(config: CommonConfig) -> float:
    return config.boot_keygroup_interval or 0.0


# --- shutdown --------------------------------------------------------------------------

SHUTDOWN_OPTIONS = [
    Option("shutdown_command", STRING, "", help="Command run in the guest to power it off."),
    Option("shutdown_timeout", DURATION, 300.0, help="How long to wait for the power-off."),
]


def _check_shutdown(config: CommonConfig, problem: Problem) -> None:
    if config.shutdown_timeout is not None and config.shutdown_timeout <= 0:
        problem("shutdown_timeout must be positive", "shutdown_timeout")


SHUTDOWN_CHECKS = [_check_shutdown]


# --- communicator --------------------------------------------------------------------

# Packer's key types; packwrap's default (unset) is ed25519, Packer's rsa 4096.
TEMPORARY_KEY_TYPES = ("dsa", "ecdsa", "ed25519", "rsa")

SSH_EXTRA_OPTIONS = [
    # A cloud's key pair name: Packer's qemu builder ignores it too (the key is
    # ssh_private_key_file's).
    Option("ssh_keypair_name", STRING, None, ignored=True, help="cloud key pair name"),
    Option(
        "temporary_key_pair_name",
        STRING,
        None,
        help="the temporary public key's comment (packwrap: packwrap-<build>; Packer: "
        "packer_<uuid>)",
    ),
    Option("temporary_key_pair_type", STRING, None, choices=TEMPORARY_KEY_TYPES),
    Option("temporary_key_pair_bits", INT, None),
    Option("ssh_ciphers", LIST, [], help="offer only these ciphers"),
    Option("ssh_key_exchange_algorithms", LIST, [], help="offer only these kex algorithms"),
    Option("ssh_bastion_host", STRING, None),
    Option("ssh_bastion_port", INT, 22),
    Option("ssh_bastion_agent_auth", BOOL, False),
    Option("ssh_bastion_username", STRING, None),
    Option("ssh_bastion_password", STRING, None),
    Option("ssh_bastion_interactive", BOOL, False),
    Option("ssh_bastion_private_key_file", STRING, None),
    Option("ssh_bastion_certificate_file", STRING, None),
    Option("ssh_proxy_host", STRING, None, help="SOCKS5 proxy for the SSH connection"),
    Option("ssh_proxy_port", INT, 1080),
    Option("ssh_proxy_username", STRING, None),
    Option("ssh_proxy_password", STRING, None),
    Option("ssh_local_tunnels", LIST, [], help='"port:host:hostport": -L over the session'),
    Option("ssh_remote_tunnels", LIST, [], help='"port:host:hostport": -R over the session'),
    # WinRM is Windows' communicator: accepted so templates load (Packer's qemu builder
    # ignores them too when communicator is "ssh"); communicator "winrm" is refused.
    *(
        Option(name, kind, None, ignored=True, help="WinRM only")
        for name, kind in (
            ("winrm_username", STRING),
            ("winrm_password", STRING),
            ("winrm_host", STRING),
            ("winrm_no_proxy", BOOL),
            ("winrm_port", INT),
            ("winrm_timeout", DURATION),
            ("winrm_use_ssl", BOOL),
            ("winrm_insecure", BOOL),
            ("winrm_use_ntlm", BOOL),
        )
    ),
]


def _parse_communicator(value: object) -> str:
    if value == "winrm":
        raise ValueError('OpenBSD has no WinRM service: use communicator = "ssh"')
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


# Options Packer's own qemu builder accepts and ignores: packwrap does the same (a
# warning says they have no effect). README counts them apart from the honoured ones.
IGNORED_BY_PACKER_QEMU = (
    "ssh_keypair_name",
    "winrm_username",
    "winrm_password",
    "winrm_host",
    "winrm_no_proxy",
    "winrm_port",
    "winrm_timeout",
    "winrm_use_ssl",
    "winrm_insecure",
    "winrm_use_ntlm",
)

COMM_OPTIONS = [
    Option("communicator", STRING, "ssh", choices=("ssh", "none"), parse=_parse_communicator),
    Option("pause_before_connecting", DURATION, 0.0),
    Option("ssh_host", STRING, None),
    Option("ssh_port", INT, 22),
    Option("ssh_username", STRING, None),
    Option("ssh_password", STRING, None),
    Option("ssh_private_key_file", STRING, None),
    Option("ssh_timeout", DURATION, None),
    # Packer's older name; when both are set it wins (the SDK's "backwards compatibility")
    Option("ssh_wait_timeout", DURATION, None),
    Option("ssh_handshake_attempts", INT, None),
    Option("ssh_keep_alive_interval", DURATION, 5.0),
    Option("ssh_read_write_timeout", DURATION, 0.0),
    Option("ssh_agent_auth", BOOL, False),
    Option("ssh_pty", BOOL, False),
    Option("ssh_disable_agent_forwarding", BOOL, False),
    Option("ssh_file_transfer_method", STRING, "scp", choices=("scp", "sftp")),
    # packwrap departs from Packer (default false): the per-build temporary key is removed
    # from the image unless asked to keep it; a user's own key is never touched.
    Option(
        "ssh_clear_authorized_keys",
        BOOL,
        True,
        help="Remove the temporary SSH key from the image before shutdown (packwrap: true).",
    ),
    Option(
        "ssh_host_key_fingerprint",
        STRING,
        None,
        help='packwrap: pin the guest\'s SSH host key ("SHA256:..."); else it is logged.',
    ),
    Option("ssh_certificate_file", STRING, None),
    *SSH_EXTRA_OPTIONS,
    # packwrap: final steps over SSH before the shutdown (packwrap/provision/generalize.py)
    Option("syspatch", BOOL, False, help="packwrap: run syspatch(8) until nothing is left."),
    Option(
        "build_record",
        BOOL,
        False,
        help="packwrap: write /etc/packwrap-build (versions, media and file hashes).",
    ),
    Option(
        "generalize",
        BOOL,
        False,
        help="packwrap: remove host keys, seeds, leases, histories, lladdr lines and the "
        "temporary key, then zero-fill free space.",
    ),
]


def _check_comm(config: CommonConfig, problem: Problem) -> None:
    if config.communicator == "none":
        for name, wanted in (
            ("syspatch", config.syspatch),
            ("build_record", config.build_record),
            ("generalize", config.generalize),
        ):
            if wanted:
                problem(f'{name} runs over SSH: it needs communicator = "ssh"', name)
    if config.communicator != "ssh":
        return
    if not config.ssh_username:
        problem('ssh_username must be specified (or set communicator = "none")', "ssh_username")
    if not 0 < config.ssh_port <= 65535:
        problem(f"ssh_port {config.ssh_port} is not a TCP port", "ssh_port")
    key = config.ssh_private_key_file
    if key and not os.path.isfile(os.path.expanduser(key)):
        problem(f"ssh_private_key_file {key!r} does not exist", "ssh_private_key_file")
    if config.ssh_wait_timeout:
        config["ssh_timeout"] = config.ssh_wait_timeout
    comment = config.temporary_key_pair_name
    if comment is not None and (not comment.strip() or any(c in comment for c in "\r\n")):
        problem(f"temporary_key_pair_name {comment!r}: one line of text", "temporary_key_pair_name")
    # Packer: with neither timeout nor attempts set, 5m and 10 attempts.
    if config.ssh_timeout is None and config.ssh_handshake_attempts is None:
        config["ssh_timeout"], config["ssh_handshake_attempts"] = 300.0, 10
    elif config.ssh_timeout is None:
        config["ssh_timeout"] = 300.0
    elif config.ssh_handshake_attempts is None:
        config["ssh_handshake_attempts"] = 10
    _check_ssh_extras(config, problem)


def parse_tunnel(spec: str) -> tuple[int, str, int]:
    """Packer's tunnel form "port:host:hostport" -> (port, host, hostport); ValueError."""
    listen, _, target = spec.partition(":")
    host, _, port = target.rpartition(":")
    if not listen.isdigit() or not port.isdigit() or not host:
        raise ValueError(f"{spec!r}: expected port:host:hostport")
    if not 0 < int(listen) <= 65535 or not 0 < int(port) <= 65535:
        raise ValueError(f"{spec!r}: ports must be 1-65535")
    return int(listen), host.strip("[]"), int(port)


def _check_ssh_extras(config: Config, problem: Problem) -> None:
    """Packer's rules for the bastion, proxy, tunnel and temporary-key options."""
    if config.ssh_bastion_host and config.ssh_proxy_host:
        problem(
            "please specify either ssh_bastion_host or ssh_proxy_host, not both", "ssh_proxy_host"
        )
    if config.ssh_bastion_host:
        if not config.ssh_bastion_private_key_file and config.ssh_private_key_file:
            config["ssh_bastion_private_key_file"] = config.ssh_private_key_file
        if not config.ssh_bastion_certificate_file and config.ssh_certificate_file:
            config["ssh_bastion_certificate_file"] = config.ssh_certificate_file
        key = config.ssh_bastion_private_key_file
        if not (config.ssh_bastion_password or key or config.ssh_bastion_agent_auth):
            problem(
                "ssh_bastion_password, ssh_bastion_private_key_file or ssh_bastion_agent_auth "
                "must be specified",
                "ssh_bastion_host",
            )
        elif key and not os.path.isfile(os.path.expanduser(key)):
            problem(
                f"ssh_bastion_private_key_file {key!r} does not exist",
                "ssh_bastion_private_key_file",
            )
    tunnels = {"ssh_local_tunnels": config.ssh_local_tunnels}
    tunnels["ssh_remote_tunnels"] = config.ssh_remote_tunnels
    for name, specs in tunnels.items():
        for spec in specs:
            try:
                parse_tunnel(spec)
            except ValueError as exc:
                problem(f"{name} {exc}", name)
    _check_temporary_key(config, problem)


def _check_temporary_key(config: Config, problem: Problem) -> None:
    kind, bits = config.temporary_key_pair_type, config.temporary_key_pair_bits
    option = "temporary_key_pair_bits"
    if kind == "dsa":
        problem(
            'temporary_key_pair_type "dsa": OpenSSH (9.8) and packwrap\'s SSH client no longer '
            'take DSA keys; use "ed25519", "ecdsa" or "rsa"',
            "temporary_key_pair_type",
        )
    elif bits is not None and kind == "rsa" and bits < 1024:
        problem("temporary_key_pair_bits: RSA keys need at least 1024 bits", option)
    elif bits is not None and kind == "ecdsa" and bits not in (256, 384, 521):
        problem("temporary_key_pair_bits: ecdsa keys are 256, 384 or 521 bits", option)


COMM_CHECKS = [_check_comm]

# --- install cache (packwrap/installcache) ----------------------------------------------

CACHE_OPTIONS = [
    Option(
        "install_cache",
        BOOL,
        True,
        help="packwrap: reuse a cached install when every install input is the same "
        "(false: always install; `packwrap build -force-install` for one build).",
    ),
]
CACHE_CHECKS: list[Callable[[Config, Problem], None]] = []

ALL_OPTIONS = [*HTTP_OPTIONS, *BOOT_OPTIONS, *SHUTDOWN_OPTIONS, *COMM_OPTIONS, *CACHE_OPTIONS]
ALL_CHECKS = [*HTTP_CHECKS, *BOOT_CHECKS, *SHUTDOWN_CHECKS, *COMM_CHECKS]


def sensitive_config_values(config: Config) -> set[str]:
    """Values in the common options that must never be logged."""
    typed = as_common_config(config)
    values = (
        typed.ssh_password,
        typed.ssh_bastion_password,
        typed.ssh_proxy_password,
        typed.winrm_password,
    )
    return {v for v in values if v}


class CommonConfig(Config):
    """The options above, typed: the base of every builder's typed Config (durations are
    seconds; a None duration or count means "use the rule in the helpers above")."""

    http_directory: str | None
    http_content: dict[str, str] | None
    http_port_min: int
    http_port_max: int
    http_bind_address: str | None
    http_interface: str | None
    http_network_protocol: str
    boot_command: list[str]
    boot_wait: float | None
    boot_key_interval: float | None
    boot_keygroup_interval: float | None
    boot_expect: list[str]
    boot_expect_timeout: float
    boot_echo_check: bool
    boot_secret_elements: list[int]
    shutdown_command: str
    shutdown_timeout: float
    communicator: str | None
    pause_before_connecting: float
    ssh_host: str | None
    ssh_port: int
    ssh_username: str | None
    ssh_password: str | None
    ssh_private_key_file: str | None
    ssh_timeout: float | None
    ssh_wait_timeout: float | None  # copied into ssh_timeout by the checks
    ssh_handshake_attempts: int | None
    ssh_keep_alive_interval: float
    ssh_read_write_timeout: float
    ssh_agent_auth: bool
    ssh_pty: bool
    ssh_disable_agent_forwarding: bool
    ssh_file_transfer_method: str
    ssh_clear_authorized_keys: bool
    ssh_host_key_fingerprint: str | None
    ssh_certificate_file: str | None
    install_cache: bool
    ssh_keypair_name: str | None
    temporary_key_pair_name: str | None
    temporary_key_pair_type: str | None  # None: ed25519
    temporary_key_pair_bits: int | None
    ssh_ciphers: list[str]
    ssh_key_exchange_algorithms: list[str]
    ssh_bastion_host: str | None
    ssh_bastion_port: int
    ssh_bastion_agent_auth: bool
    ssh_bastion_username: str | None
    ssh_bastion_password: str | None
    ssh_bastion_interactive: bool
    ssh_bastion_private_key_file: str | None
    ssh_bastion_certificate_file: str | None
    ssh_proxy_host: str | None
    ssh_proxy_port: int
    ssh_proxy_username: str | None
    ssh_proxy_password: str | None
    ssh_local_tunnels: list[str]
    ssh_remote_tunnels: list[str]
    winrm_username: str | None
    winrm_password: str | None
    winrm_host: str | None
    winrm_no_proxy: bool | None
    winrm_port: int | None
    winrm_timeout: float | None
    winrm_use_ssl: bool | None
    winrm_insecure: bool | None
    winrm_use_ntlm: bool | None
    syspatch: bool
    build_record: bool
    generalize: bool


def as_common_config(config: Config) -> CommonConfig:
    """The config as a CommonConfig. A builder's typed config is one already; a builder
    whose schema has no typed config (a plain Config: test builders, older third-party
    plugins) is read over the common options' defaults, frozen like any prepared config."""
    if isinstance(config, CommonConfig):
        return config
    defaults = {option.name: option.default_value() for option in ALL_OPTIONS}
    typed = CommonConfig({**defaults, **config})
    typed.freeze()
    return typed
