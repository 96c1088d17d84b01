"""Depth model: a stand-in L2 book for each candle bar, calibrated on the real 20-level books.

Calibration (`fit_venue_depth`), per venue, over that venue's real snapshots:
  - half spread in bps of mid: median over snapshots of (best ask - best bid) / 2 / mid * 1e4;
  - per level i and side, the price offset from mid in bps: median of |price_i - mid| / mid * 1e4;
  - per level i and side, the quantity relative to a reference bar volume: median of qty_i / V_ref.
V_ref is the median bar volume of that venue's candle file (marketdata.calibration uses the 5-minute
files), so a bar with twice the usual volume gets a book twice as deep. Prices are placed on the
venue's tick (Upbit's KRW price table, a fixed tick elsewhere) and kept strictly best-first.
Pure: no I/O; the books and V_ref are passed in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import median
from typing import Iterable, Mapping

from domain.book import Book
from domain.venues import Venue, upbit_krw_tick

# Tick used when the caller gives none: BTC markets' ticks (Upbit: 0 = the KRW price table).
DEFAULT_TICKS: dict[str, float] = {Venue.UPBIT.value: 0.0, Venue.BINANCE.value: 0.01, Venue.BINANCE_USDM.value: 0.1}


@dataclass(frozen=True, slots=True)
class VenueDepth:
    """One venue's fitted book shape: spread, per-level offsets (bps) and relative quantities."""

    venue: str
    half_spread_bps: float
    bid_offsets_bps: tuple[float, ...]
    ask_offsets_bps: tuple[float, ...]
    bid_qty_rel: tuple[float, ...]
    ask_qty_rel: tuple[float, ...]
    reference_volume: float
    samples: int

    @property
    def levels(self) -> int:
        return len(self.bid_offsets_bps)


def fit_venue_depth(books: Iterable[Book], reference_volume: float) -> VenueDepth:
    """Fit one venue's depth shape on its real snapshots (all the same venue, at least one level)."""
    books = list(books)
    if not books:
        raise ValueError("fit_venue_depth: no books")
    if not reference_volume > 0:
        raise ValueError(f"fit_venue_depth: reference_volume {reference_volume} must be positive")
    venues = {str(getattr(b.venue, "value", b.venue)) for b in books}
    if len(venues) != 1:
        raise ValueError(f"fit_venue_depth: books from several venues {sorted(venues)}")
    levels = min(min(len(b.bids), len(b.asks)) for b in books)
    if levels < 1:
        raise ValueError("fit_venue_depth: a book has an empty side")
    mids = [b.mid for b in books]

    def per_level(side: str, what: str) -> tuple[float, ...]:
        out = []
        for i in range(levels):
            vals = []
            for b, mid in zip(books, mids):
                px, qty = getattr(b, side)[i]
                vals.append(abs(px - mid) / mid * 1e4 if what == "offset" else qty / reference_volume)
            out.append(median(vals))
        return tuple(out)

    return VenueDepth(venues.pop(), median((b.best_ask - b.best_bid) / 2 / m * 1e4 for b, m in zip(books, mids)),
                      per_level("bids", "offset"), per_level("asks", "offset"),
                      per_level("bids", "qty"), per_level("asks", "qty"), reference_volume, len(books))


@dataclass(frozen=True, slots=True)
class DepthModel:
    """Fitted depth shapes per venue; builds the book that stands in for a bar."""

    venues: Mapping[str, VenueDepth]
    ticks: Mapping[str, float] | None = None  # venue -> tick (0 = Upbit KRW table); None = DEFAULT_TICKS

    def book_for(self, venue: str | Venue, symbol: str, ts_ms: int, price: float, bar_volume: float, *,
                 tick_size: float | None = None) -> Book:
        """A book centred on `price` whose depth scales with `bar_volume` (same bar length as V_ref)."""
        name = venue.value if isinstance(venue, Venue) else venue
        shape = self.venues.get(name)
        if shape is None:
            raise KeyError(f"depth model has no fit for venue {name!r} (have {sorted(self.venues)})")
        if not (price > 0 and math.isfinite(price)) or not bar_volume >= 0:
            raise ValueError(f"{name} {symbol} at {ts_ms}: price {price} must be > 0 and volume {bar_volume} >= 0")
        tick = tick_size if tick_size is not None else (self.ticks or DEFAULT_TICKS).get(name, 0.0)
        scale = bar_volume / shape.reference_volume
        bids = _side(price, shape.bid_offsets_bps, tick, -1)
        asks = _side(price, shape.ask_offsets_bps, tick, +1)
        if bids[0] >= asks[0]:  # a spread below one tick: keep one tick between the sides
            bids = [p - _tick(tick, bids[0]) for p in bids]
        # A minimum of 1e-9 keeps every level a real (if tiny) quote when a bar traded nothing.
        return Book(name, symbol, ts_ms,
                    tuple((p, max(r * shape.reference_volume * scale, 1e-9)) for p, r in zip(bids, shape.bid_qty_rel)),
                    tuple((p, max(r * shape.reference_volume * scale, 1e-9)) for p, r in zip(asks, shape.ask_qty_rel)))


def _tick(tick: float, price: float) -> float:
    return tick if tick > 0 else upbit_krw_tick(price)


def _side(mid: float, offsets_bps: tuple[float, ...], tick: float, sign: int) -> list[float]:
    """Prices at the given offsets, on the tick (bids down, asks up), strictly moving away from mid."""
    out: list[float] = []
    for off in offsets_bps:
        raw = mid * (1 + sign * off / 1e4)
        t = _tick(tick, raw)
        steps = math.floor(raw / t + 1e-9) if sign < 0 else math.ceil(raw / t - 1e-9)
        px = steps * t
        if out and (px >= out[-1] if sign < 0 else px <= out[-1]):
            px = out[-1] + sign * _tick(tick, out[-1])
        out.append(round(px, 10))
    return out
