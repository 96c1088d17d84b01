"""Candle (OHLCV bar) record: what the candle CSVs hold and the candle Parquet files store."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Candle:
    """One bar of one venue's market; ts_ms is the bar OPEN time (UTC epoch ms), volume in coin units."""

    venue: str
    symbol: str
    ts_ms: int
    interval_s: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    def problem(self) -> str | None:
        """Why this bar is impossible (None when it is fine); importers turn it into a DataError."""
        if not all(v > 0 for v in (self.open, self.high, self.low, self.close)):
            return "prices must be positive"
        if self.volume < 0 or self.volume != self.volume:
            return f"volume {self.volume} must be >= 0"
        if not (self.low <= min(self.open, self.close) and self.high >= max(self.open, self.close)):
            return f"low {self.low} / high {self.high} do not bracket open {self.open} and close {self.close}"
        return None
