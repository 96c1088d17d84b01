"""L2 order book snapshot and the depth walk that every price in the system comes from."""
from __future__ import annotations

from dataclasses import dataclass

Levels = tuple[tuple[float, float], ...]  # ((price, qty), ...), best first


class BadBook(ValueError):
    """A book that cannot be traded against: crossed, unsorted, or with non-positive values."""


@dataclass(frozen=True, slots=True)
class Book:
    """One venue's L2 book for one coin at one instant (venue clock, epoch milliseconds).

    `symbol` is the coin (BTC); the Upbit KRW-USDT book that gives the FX rate has symbol USDT.
    Bids are sorted high to low, asks low to high.
    """

    venue: str
    symbol: str
    ts_ms: int
    bids: Levels
    asks: Levels

    @property
    def best_bid(self) -> float:
        return self.bids[0][0] if self.bids else 0.0

    @property
    def best_ask(self) -> float:
        return self.asks[0][0] if self.asks else float("inf")

    @property
    def mid(self) -> float:
        return (self.best_bid + self.best_ask) / 2

    def validate(self) -> "Book":
        """Raise BadBook naming what is wrong; return self so it chains."""
        where = f"{self.venue} {self.symbol} book at {self.ts_ms}"
        for side, levels, desc in (("bids", self.bids, True), ("asks", self.asks, False)):
            for i, (px, qty) in enumerate(levels):
                if not (px > 0 and qty >= 0) or px != px or qty != qty:
                    raise BadBook(f"{where}: {side}[{i}] = ({px}, {qty}) must be positive numbers")
                if i and ((px >= levels[i - 1][0]) if desc else (px <= levels[i - 1][0])):
                    raise BadBook(f"{where}: {side} not sorted best-first at level {i}")
        if self.bids and self.asks and self.best_bid >= self.best_ask:
            raise BadBook(f"{where}: crossed, best bid {self.best_bid} >= best ask {self.best_ask}")
        return self


@dataclass(frozen=True, slots=True)
class Walk:
    """Result of walking one side of a book for a quantity."""

    qty: float          # filled quantity (less than asked when depth runs out)
    notional: float     # sum(price * qty) over the levels consumed
    worst_price: float  # last level touched
    levels: int         # number of levels touched

    @property
    def vwap(self) -> float:
        return self.notional / self.qty if self.qty > 0 else 0.0


EMPTY_WALK = Walk(0.0, 0.0, 0.0, 0)


def walk(levels: Levels, qty: float) -> Walk:
    """Consume `qty` from best level outward; partial when the book runs out."""
    if qty <= 0:
        return EMPTY_WALK
    left = qty
    notional = 0.0
    price = 0.0
    n = 0
    for price, size in levels:
        n += 1
        if size >= left:
            notional += price * left
            left = 0.0
            break
        notional += price * size
        left -= size
    return Walk(qty - left, notional, price, n)


def depth_qty(levels: Levels, max_levels: int) -> float:
    """Total quantity shown in the first `max_levels` levels."""
    return sum(size for _, size in levels[:max_levels])
