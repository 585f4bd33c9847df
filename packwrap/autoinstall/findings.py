"""A lint finding: one line of a response file and what is wrong with it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Finding:
    line: int  # 1-based; 0 = the file as a whole
    severity: str  # "error" | "warning"
    message: str
    path: str | None = None

    def __str__(self) -> str:
        where = self.path or "<response file>"
        return f"{where}:{self.line}: {self.severity}: {self.message}"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"
