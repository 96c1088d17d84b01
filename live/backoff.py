"""Exponential backoff with a cap, shared by every live call that retries (orders, cancels, reads)."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays base, base*factor, ... capped at `cap_s`, for at most `attempts` tries in all."""

    base_s: float = 0.2
    factor: float = 2.0
    cap_s: float = 10.0
    attempts: int = 6

    def __post_init__(self) -> None:
        if not (0 < self.base_s <= self.cap_s and math.isfinite(self.cap_s)):
            raise ValueError(f"backoff: need 0 < base_s ({self.base_s}) <= cap_s ({self.cap_s})")
        if self.factor < 1 or self.attempts < 1:
            raise ValueError(f"backoff: factor {self.factor} must be >= 1 and attempts {self.attempts} >= 1")

    def delay(self, retry: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (1-based); a venue's Retry-After wins, capped too."""
        wait = self.base_s * self.factor ** (retry - 1)
        if retry_after_s is not None and retry_after_s > 0:
            wait = max(wait, retry_after_s)
        return min(wait, self.cap_s)
