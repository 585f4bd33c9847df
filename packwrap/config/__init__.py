"""Builder configuration schemas: the Prepare step of Packer, declared as data."""

from packwrap.config.schema import Config, ConfigError, Option, Problem, Schema
from packwrap.config.size import Size, parse_size

__all__ = ["Config", "ConfigError", "Option", "Problem", "Schema", "Size", "parse_size"]
