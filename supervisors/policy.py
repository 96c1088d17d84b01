"""Restart budget per actor: at most N restarts in a sliding window, each after an exponential back-off.

Pure (the clock is passed in), so the supervisor's decisions are tested without Ray. When the
budget is spent the answer is None: the supervisor escalates instead of restarting again.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How often one actor may be restarted, and how long to wait before each restart (seconds)."""

    max_restarts: int = 5          # within window_s; one more death escalates (P0, trading frozen)
    window_s: float = 60.0
    backoff_base_s: float = 0.05   # wait before the first restart in a window: a lone crash recovers fast
    backoff_factor: float = 2.0    # each further restart in the window waits this much longer
    backoff_max_s: float = 5.0
    ping_timeout_s: float = 1.0    # an answer slower than this is a missed ping
    max_missed_pings: int = 3      # this many missed pings in a row: hung, killed and restarted
    ready_timeout_s: float = 30.0  # a restarted actor must be trading again within this

    def __post_init__(self) -> None:
        if self.max_restarts < 1:
            raise ValueError(f"supervisor policy: max_restarts must be >= 1, got {self.max_restarts}")
        for name in ("window_s", "ping_timeout_s", "ready_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"supervisor policy: {name} must be > 0, got {getattr(self, name)}")
        if self.backoff_base_s < 0 or self.backoff_factor < 1 or self.backoff_max_s < self.backoff_base_s:
            raise ValueError("supervisor policy: need backoff_base_s >= 0, backoff_factor >= 1, "
                             f"backoff_max_s >= backoff_base_s (got {self.backoff_base_s}, "
                             f"{self.backoff_factor}, {self.backoff_max_s})")
        if self.max_missed_pings < 1:
            raise ValueError(f"supervisor policy: max_missed_pings must be >= 1, got {self.max_missed_pings}")


class RestartBudget:
    """The restarts one actor has had in the current window."""

    def __init__(self, policy: RestartPolicy):
        self.policy = policy
        self.times: deque[float] = deque()

    def _slide(self, now: float) -> None:
        while self.times and self.times[0] <= now - self.policy.window_s:
            self.times.popleft()

    def delay(self, now: float) -> float | None:
        """Seconds to wait before the next restart, or None when the window's budget is spent."""
        self._slide(now)
        n = len(self.times)
        if n >= self.policy.max_restarts:
            return None
        p = self.policy
        return min(p.backoff_max_s, p.backoff_base_s * p.backoff_factor ** n)

    def spend(self, now: float) -> None:
        """Count one restart attempt (successful or not) at `now`."""
        self.times.append(now)

    def used(self, now: float) -> int:
        self._slide(now)
        return len(self.times)
