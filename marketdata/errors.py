"""The one error type for bad market data: it names the file, the row or line, and what was wrong."""
from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A corrupt, truncated or inconsistent market data input; nothing of it was loaded."""

    def __init__(self, path: str | Path, where: str | int | None, what: str) -> None:
        self.path = str(path)
        self.where = where
        self.what = what
        loc = f"{self.path}" if where is None else (
            f"{self.path}, line {where}" if isinstance(where, int) else f"{self.path}, {where}")
        super().__init__(f"{loc}: {what}")
