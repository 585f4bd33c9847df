"""Builder configuration schemas: the Prepare step of Packer, declared as data."""

from packwrap.config.schema import Config, ConfigError, Option, Problem, Schema

__all__ = ["Config", "ConfigError", "Option", "Problem", "Schema"]
