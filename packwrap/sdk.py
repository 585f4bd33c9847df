"""The plugin SDK: everything a builder plugin may use from packwrap, and nothing else.

A plugin imports from here only (tests/unit/test_sdk.py checks every module under
plugin/), so the core can move things without breaking builders. It mirrors
packer-plugin-sdk's packages:

  steps and state    Step, If, State, config_of, run_steps   (multistep)
  schema and types   Option, Schema, Config, Check, Size, STRING, ...  (config)
  common options     common_options (HTTP_/BOOT_/SHUTDOWN_/COMM_ OPTIONS and CHECKS),
                     guest_network (the guest's static IPv4 options and rule)
  core steps         StepHTTPServer, StepTypeBootCommand, StepSiteSet, StepLocalSets,
                     StepOutputDir,
                     StepInstallerDriftGuard (+ watch_installer in wait loops),
                     StepTemporaryKey, StepConnect, StepProvision, StepShutdown, ...
  install cache      StepInstallCacheLookup (a builder's inputs), StepInstallCacheStore,
                     installing / cache_hit (conditions), input_file_hash, clone_or_copy,
                     choose_cached_disk / CachedDisk / must_flatten (a hit's disk)
  files              atomic_output (a tool's output renamed into place, never half-written)
  artifact           Artifact
  errors             PackwrapError, Cancelled, ConsoleError, BuildFailed
  console            SerialConsole, console_tail, log_line
  installer          FAILURE_MARKERS, SUCCESS_MARKER, failure_marker
  template data      template_data, render_template, render_generated_files
  host network       interface_ipv4, requested_bind_address (http_interface)
  media              parse_iso_checksum, packer_target_path (Packer's download name)

Names load lazily (PEP 562 `__getattr__` and a name -> module table), so importing the
SDK costs nothing until a name is used and `packwrap --help` stays as fast as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> (module, attribute); attribute None: the module itself.
_EXPORTS: dict[str, tuple[str, str | None]] = {
    # steps and state
    "Step": ("packwrap.build.step", "Step"),
    "If": ("packwrap.build.step", "If"),
    "State": ("packwrap.build.state", "State"),
    "BuildOptions": ("packwrap.build.state", "BuildOptions"),
    "config_of": ("packwrap.build.state", "config_of"),
    "run_steps": ("packwrap.build.runner", "run_steps"),
    # schema and types
    "Option": ("packwrap.config.schema", "Option"),
    "Schema": ("packwrap.config.schema", "Schema"),
    "Config": ("packwrap.config.schema", "Config"),
    "ConfigError": ("packwrap.config.schema", "ConfigError"),
    "Problem": ("packwrap.config.schema", "Problem"),
    "STRING": ("packwrap.config.schema", "STRING"),
    "INT": ("packwrap.config.schema", "INT"),
    "BOOL": ("packwrap.config.schema", "BOOL"),
    "DURATION": ("packwrap.config.schema", "DURATION"),
    "LIST": ("packwrap.config.schema", "LIST"),
    "LIST_OF_LISTS": ("packwrap.config.schema", "LIST_OF_LISTS"),
    "MAP": ("packwrap.config.schema", "MAP"),
    "ANY": ("packwrap.config.schema", "ANY"),
    "Check": ("packwrap.config.schema", "Check"),
    "Size": ("packwrap.config.size", "Size"),
    "parse_size": ("packwrap.config.size", "parse_size"),
    "MIB": ("packwrap.config.size", "MIB"),
    "WHOLE_MIB": ("packwrap.config.size", "WHOLE_MIB"),
    "format_duration": ("packwrap.durations", "format_duration"),
    "parse_duration": ("packwrap.durations", "parse_duration"),
    "packer_target_path": ("packwrap.media.cache", "packer_target_path"),
    "parse_iso_checksum": ("packwrap.media.checksums", "parse_iso_checksum"),
    # common options
    "common_options": ("packwrap.build.common_options", None),
    "guest_network": ("packwrap.build.guest_network", None),
    # core steps
    "StepHTTPServer": ("packwrap.build.steps.http_server", "StepHTTPServer"),
    "resolve_http_directory": ("packwrap.build.steps.http_server", "resolve_http_directory"),
    "StepTypeBootCommand": ("packwrap.build.steps.boot_command", "StepTypeBootCommand"),
    "StepSiteSet": ("packwrap.build.steps.site_set", "StepSiteSet"),
    "StepLocalSets": ("packwrap.build.steps.local_sets", "StepLocalSets"),
    "StepOutputDir": ("packwrap.build.steps.output_dir", "StepOutputDir"),
    "OutputPlan": ("packwrap.build.steps.output_dir", "OutputPlan"),
    "StepTemporaryKey": ("packwrap.communicator.steps", "StepTemporaryKey"),
    "StepConnect": ("packwrap.communicator.steps", "StepConnect"),
    "StepCleanupTemporaryKey": ("packwrap.communicator.steps", "StepCleanupTemporaryKey"),
    "StepCheckProvisioners": ("packwrap.provision.step", "StepCheckProvisioners"),
    "StepProvision": ("packwrap.provision.step", "StepProvision"),
    "StepShutdown": ("packwrap.provision.shutdown", "StepShutdown"),
    "final_guest_steps": ("packwrap.provision.generalize", "final_guest_steps"),
    "wants_final_steps": ("packwrap.provision.generalize", "wants_final_steps"),
    "StepInstallerDriftGuard": ("packwrap.build.steps.drift_guard", "StepInstallerDriftGuard"),
    "watch_installer": ("packwrap.build.steps.drift_guard", "watch_installer"),
    # install cache
    "StepInstallCacheLookup": ("packwrap.build.steps.install_cache", "StepInstallCacheLookup"),
    "StepInstallCacheStore": ("packwrap.build.steps.install_cache", "StepInstallCacheStore"),
    "installing": ("packwrap.build.steps.install_cache", "installing"),
    "cache_hit": ("packwrap.build.steps.install_cache", "cache_hit"),
    "CachedDisk": ("packwrap.build.steps.install_cache", "CachedDisk"),
    "cached_disk": ("packwrap.build.steps.install_cache", "cached_disk"),
    "choose_cached_disk": ("packwrap.build.steps.install_cache", "choose_cached_disk"),
    "must_flatten": ("packwrap.build.steps.install_cache", "must_flatten"),
    "input_file_hash": ("packwrap.installcache.key", "file_hash"),
    "clone_or_copy": ("packwrap.installcache.copy", "clone_or_copy"),
    "atomic_output": ("packwrap.atomicfile", "atomic_output"),
    # artifact
    "Artifact": ("packwrap.build.artifact", "Artifact"),
    # errors
    "PackwrapError": ("packwrap.errors", "PackwrapError"),
    "Cancelled": ("packwrap.errors", "Cancelled"),
    "ConsoleError": ("packwrap.build.console", "ConsoleError"),
    "BuildFailed": ("packwrap.build.console", "BuildFailed"),
    # console
    "SerialConsole": ("packwrap.build.console", "SerialConsole"),
    "console_tail": ("packwrap.build.console", "console_tail"),
    "log_line": ("packwrap.build.ui", "log_line"),
    # installer
    "FAILURE_MARKERS": ("packwrap.autoinstall.markers", "FAILURE_MARKERS"),
    "SUCCESS_MARKER": ("packwrap.autoinstall.markers", "SUCCESS_MARKER"),
    "failure_marker": ("packwrap.autoinstall.markers", "failure_marker"),
    # template data and renderer
    "template_data": ("packwrap.build.steps.http_server", "template_data"),
    "render_template": ("packwrap.build.bootcommand", "render"),
    "render_generated_files": ("packwrap.build.http_server", "render_generated_files"),
    # host network
    "interface_ipv4": ("packwrap.build.host_interface", "interface_ipv4"),
    "requested_bind_address": ("packwrap.build.http_server", "requested_bind_address"),
}

__all__ = [
    "ANY",
    "Artifact",
    "BOOL",
    "BuildFailed",
    "BuildOptions",
    "Cancelled",
    "Check",
    "Config",
    "ConfigError",
    "ConsoleError",
    "DURATION",
    "FAILURE_MARKERS",
    "INT",
    "If",
    "LIST",
    "LIST_OF_LISTS",
    "MAP",
    "MIB",
    "Option",
    "OutputPlan",
    "PackwrapError",
    "Problem",
    "STRING",
    "SUCCESS_MARKER",
    "Schema",
    "SerialConsole",
    "Size",
    "State",
    "Step",
    "StepCheckProvisioners",
    "StepCleanupTemporaryKey",
    "StepConnect",
    "StepHTTPServer",
    "StepInstallCacheLookup",
    "StepInstallCacheStore",
    "StepInstallerDriftGuard",
    "StepLocalSets",
    "StepOutputDir",
    "StepProvision",
    "StepShutdown",
    "final_guest_steps",
    "wants_final_steps",
    "StepSiteSet",
    "StepTemporaryKey",
    "StepTypeBootCommand",
    "WHOLE_MIB",
    "atomic_output",
    "cache_hit",
    "CachedDisk",
    "cached_disk",
    "choose_cached_disk",
    "clone_or_copy",
    "common_options",
    "config_of",
    "console_tail",
    "failure_marker",
    "format_duration",
    "guest_network",
    "input_file_hash",
    "installing",
    "interface_ipv4",
    "log_line",
    "must_flatten",
    "parse_duration",
    "packer_target_path",
    "parse_iso_checksum",
    "parse_size",
    "render_generated_files",
    "render_template",
    "requested_bind_address",
    "resolve_http_directory",
    "run_steps",
    "template_data",
    "watch_installer",
]

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ loads
    from packwrap.atomicfile import atomic_output
    from packwrap.autoinstall.markers import FAILURE_MARKERS, SUCCESS_MARKER, failure_marker
    from packwrap.build import common_options, guest_network
    from packwrap.build.artifact import Artifact
    from packwrap.build.bootcommand import render as render_template
    from packwrap.build.console import BuildFailed, ConsoleError, SerialConsole, console_tail
    from packwrap.build.host_interface import interface_ipv4
    from packwrap.build.http_server import (
        render_generated_files,
        requested_bind_address,
    )
    from packwrap.build.runner import run_steps
    from packwrap.build.state import BuildOptions, State, config_of
    from packwrap.build.step import If, Step
    from packwrap.build.steps.boot_command import StepTypeBootCommand
    from packwrap.build.steps.drift_guard import StepInstallerDriftGuard, watch_installer
    from packwrap.build.steps.http_server import (
        StepHTTPServer,
        resolve_http_directory,
        template_data,
    )
    from packwrap.build.steps.install_cache import (
        CachedDisk,
        StepInstallCacheLookup,
        StepInstallCacheStore,
        cache_hit,
        cached_disk,
        choose_cached_disk,
        installing,
        must_flatten,
    )
    from packwrap.build.steps.local_sets import StepLocalSets
    from packwrap.build.steps.output_dir import OutputPlan, StepOutputDir
    from packwrap.build.steps.site_set import StepSiteSet
    from packwrap.build.ui import log_line
    from packwrap.communicator.steps import StepCleanupTemporaryKey, StepConnect, StepTemporaryKey
    from packwrap.config.schema import (
        ANY,
        BOOL,
        DURATION,
        INT,
        LIST,
        LIST_OF_LISTS,
        MAP,
        STRING,
        Check,
        Config,
        ConfigError,
        Option,
        Problem,
        Schema,
    )
    from packwrap.config.size import MIB, WHOLE_MIB, Size, parse_size
    from packwrap.durations import format_duration, parse_duration
    from packwrap.errors import Cancelled, PackwrapError
    from packwrap.installcache.copy import clone_or_copy
    from packwrap.installcache.key import file_hash as input_file_hash
    from packwrap.media.cache import packer_target_path
    from packwrap.media.checksums import parse_iso_checksum
    from packwrap.provision.generalize import final_guest_steps, wants_final_steps
    from packwrap.provision.shutdown import StepShutdown
    from packwrap.provision.step import StepCheckProvisioners, StepProvision


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value  # cache: the next access is a plain module attribute
    return value


def __dir__() -> list[str]:
    return __all__
