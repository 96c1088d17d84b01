"""What the supervisor records per restart, and the one line it prints for it."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class RestartRecord:
    """One restart of one actor. Times are wall-clock epoch seconds (time.time())."""

    actor: str
    attempt: int          # restarts of this actor so far, this one included
    cause: str            # why it was restarted: died (with Ray's reason), hung, no heartbeat
    detected_at: float    # the supervisor noticed the death
    restarted_at: float   # the new actor answered (its constructor, restore included, finished)
    trading_at: float     # the new actor reported it is trading again

    @property
    def death_to_trading_s(self) -> float:
        return self.trading_at - self.detected_at

    def to_dict(self) -> dict:
        return {**asdict(self), "death_to_trading_s": round(self.death_to_trading_s, 4)}

    def line(self) -> str:
        return (f"supervisor: {self.actor} restart #{self.attempt} ({self.cause}): death detected -> "
                f"restarted {self.restarted_at - self.detected_at:.3f} s -> trading again "
                f"{self.death_to_trading_s:.3f} s")


def short_cause(error: BaseException) -> str:
    """The last meaningful line of a Ray error (its traceback ends with the real exception)."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip() and not set(ln.strip()) <= set("^~")]
    for line in reversed(lines):
        if "dead because" in line or "Error" in line or "died" in line:
            return line[:300]
    return (lines[-1] if lines else type(error).__name__)[:300]
