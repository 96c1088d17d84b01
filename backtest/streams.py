"""The time-ordered book stream a backtest replays, built from a profile's data section."""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterable, Iterator

from domain.book import Book
from marketdata.candle import Candle


@dataclass(frozen=True)
class Stream:
    """Books in time order plus what a reader of the results must be told about them."""

    books: Iterable[Book]
    notes: tuple[str, ...]
    synthetic: bool
    source: str
    symbols: tuple[str, ...] | None = None  # the coins the data holds, when the profile ranks (top_n)
    columns: Callable[[], Iterator] | None = None  # the same books as BookColumns chunks (fast path)


def candle_books(candles: Iterable[Candle], model) -> Iterator[Book]:
    """One modelled book per bar, stamped at the bar's END: a bar's close is not known before."""
    for c in candles:
        yield model.book_for(c.venue, c.symbol, c.ts_ms + c.interval_s * 1000, c.close, c.volume)


def merge(*streams: Iterable[Book]) -> Iterator[Book]:
    """Merge per-venue streams by time; on equal time the order is venue name, then symbol."""
    return heapq.merge(*streams, key=lambda b: (b.ts_ms, b.venue, b.symbol))


def from_profile(profile) -> Stream:
    """Open the data a backtest profile names (nothing is read before this is iterated)."""
    spec = profile.data
    if spec.kind == "candles":
        from marketdata.calibration import fitted_depth_model
        from marketdata.importers import read_candles_csv
        model = fitted_depth_model()
        up_path, bn_path = spec.resolve("upbit_candles"), spec.resolve("binance_candles")
        books = merge(candle_books(read_candles_csv(up_path), model),
                      candle_books(read_candles_csv(bn_path), model))
        notes = (f"Candle data ({up_path.name}, {bn_path.name}): candles carry no depth, so each bar's "
                 f"book is modelled by a depth model calibrated on the real 2025-08-24 20-level books "
                 f"(spread and depth by level, scaled by the bar's volume).",
                 "There is no independent USDT/KRW series in these files: the premium is computed at "
                 f"the fixed rate {profile.fx.fixed_usdt_krw} KRW/USDT, so the strategy trades "
                 "deviations of the Upbit/Binance price ratio." if profile.fx.source == "fixed" else
                 "USDT/KRW from the recorded Upbit KRW-USDT book.")
        return Stream(books, notes, False, f"{up_path.name} + {bn_path.name}")
    if spec.books is not None:
        from marketdata.parquet_books import book_coins, file_info, read_book_columns, read_books
        path = spec.resolve("books")
        info = file_info(path)
        notes = ("SYNTHETIC DATA: generated books, not a market result.",) if info.synthetic else ()
        coins = book_coins(path)
        if profile.universe.top_n is not None:
            ranking = "the file's own ranking" if info.symbols is not None else "number of book updates"
            notes += (f"Universe: the top {profile.universe.top_n} of the {len(coins)} coins in {path.name} "
                      f"by {ranking}.",)
        return Stream(read_books(path), notes, info.synthetic, path.name, coins, partial(read_book_columns, path))
    from marketdata.synthetic import SyntheticConfig, SyntheticMarket
    n = profile.universe.top_n or len(profile.symbols())
    market = SyntheticMarket(SyntheticConfig(coins=n, days=spec.synthetic_days or 1.0, seed=spec.synthetic_seed or 0))
    return Stream(market.books(), ("SYNTHETIC DATA: generated books, not a market result.",), True,
                  f"synthetic top{n} seed {spec.synthetic_seed}", tuple(market.coins), market.column_chunks)
