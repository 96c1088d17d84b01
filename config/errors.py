"""The one error type a bad profile raises, and the single problem records it carries."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a profile: the dotted key, what was expected and what was found."""

    key: str
    expected: str
    got: str

    def render(self, file: str, line: int | None = None) -> str:
        where = f" (line {line})" if line else ""
        return f"{file}: {self.key}: expected {self.expected}, got {self.got}{where}"


def shown(value: object, limit: int = 60) -> str:
    """A value as a message shows it: repr, cut short so a huge mapping stays readable."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ProfileError(ValueError):
    """A run profile that cannot be run: every problem found, each naming file and key."""

    def __init__(self, file: str, problems: list[Problem], lines: dict[str, int] | None = None):
        self.file = file
        self.problems = tuple(problems)
        lines = lines or {}
        self.messages = tuple(p.render(file, lines.get(p.key)) for p in problems)
        super().__init__("\n".join(self.messages))
