"""Venues and their trading rules: taker fee, tick and lot size, minimum notional, latency."""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum


class Venue(str, Enum):
    UPBIT = "upbit"                # KRW spot
    BINANCE = "binance"            # USDT spot
    BINANCE_USDM = "binance_usdm"  # USDT-M perpetuals

    @property
    def quote(self) -> str:
        return "KRW" if self is Venue.UPBIT else "USDT"


# Upbit KRW market price units (KRW), highest price band first.
UPBIT_KRW_TICKS: tuple[tuple[float, float], ...] = (
    (2_000_000, 1000), (1_000_000, 1000), (500_000, 500), (100_000, 100), (50_000, 50),
    (10_000, 10), (5_000, 5), (1_000, 1), (100, 1), (10, 0.1), (1, 0.01), (0.1, 0.001),
    (0.01, 0.0001), (0.0, 0.00001),
)


def upbit_krw_tick(price: float) -> float:
    """The Upbit KRW price unit that applies at `price`."""
    for floor, tick in UPBIT_KRW_TICKS:
        if price >= floor:
            return tick
    return UPBIT_KRW_TICKS[-1][1]


# The ccxt exchange id of each venue (string keys work too: Venue is a str enum).
CCXT_ID = {Venue.UPBIT: "upbit", Venue.BINANCE: "binance", Venue.BINANCE_USDM: "binanceusdm"}


@dataclass(frozen=True, slots=True)
class VenueRules:
    """What one venue charges and accepts for one market. A tick of 0 means Upbit's price table."""

    venue: Venue
    taker_fee: float          # fraction of notional, e.g. 0.0005 = 0.05%
    tick_size: float          # price increment; 0 = venue price table (Upbit KRW)
    lot_size: float           # quantity increment
    min_notional: float       # in the venue's quote currency
    latency_ms: int = 30      # decision -> fill delay used by the fill model

    def __post_init__(self) -> None:
        if not 0 <= self.taker_fee < 0.01:
            raise ValueError(f"{self.venue.value}: taker_fee {self.taker_fee} outside [0, 0.01)")
        if self.lot_size <= 0 or self.tick_size < 0 or self.min_notional < 0 or self.latency_ms < 0:
            raise ValueError(f"{self.venue.value}: lot_size must be > 0; tick, min_notional, latency >= 0")

    def tick_at(self, price: float) -> float:
        return self.tick_size if self.tick_size > 0 else upbit_krw_tick(price)

    def round_qty(self, qty: float) -> float:
        """Round a quantity down to the lot size (never sends more than asked)."""
        lots = math.floor(qty / self.lot_size + 1e-9)
        return round(lots * self.lot_size, 12)

    def round_price(self, price: float, side: str) -> float:
        """Round a limit price to the tick: buys down, sells up (never a worse price than asked)."""
        tick = self.tick_at(price)
        steps = price / tick
        steps = math.floor(steps + 1e-9) if side == "buy" else math.ceil(steps - 1e-9)
        return round(steps * tick, 10)


DEFAULT_FEES = {Venue.UPBIT: 0.0005, Venue.BINANCE: 0.0010, Venue.BINANCE_USDM: 0.0005}
