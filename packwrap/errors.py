"""The one error type packwrap shows to users.

Every failure a user can cause (bad template, bad flag, failed download, failed
build step) is raised as a PackwrapError. The CLI prints it as one line and exits
non-zero; anything else escaping is a bug and shows a traceback.
"""

from __future__ import annotations


class PackwrapError(Exception):
    """A user-facing error: one line, naming the file:line or the value at fault."""

    exit_code: int = 1

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        # One line: a multi-line cause is folded so logs and terminals stay tidy.
        return where + " ".join(self.message.split("\n")).strip()


class UsageError(PackwrapError):
    """Bad command-line input (flag values, missing arguments)."""

    exit_code = 2


class Cancelled(PackwrapError):
    """The user interrupted the run (SIGINT/SIGTERM)."""

    exit_code = 130

    def __init__(self, message: str = "interrupted"):
        super().__init__(message)
