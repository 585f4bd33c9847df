"""packwrap: build OpenBSD VM images unattended from Packer templates."""

__version__ = "0.1.0"
