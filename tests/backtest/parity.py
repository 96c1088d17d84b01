"""Run one profile over the same chunks through the per-event Engine and the fast replay, and compare.

Also stream transforms that reach the fast path's less common branches: a USDT/KRW book that
moves (and briefly loses a side), Binance books relabelled as USDT-M (perp hedge and funding), and
a coin whose books go quiet (stale, then carried across chunks).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from backtest.fast_replay import FastReplay, LazyBooks
from backtest.runner import build_engine, starting_balances
from backtest.streams import Stream
from domain.symbols import FX_SYMBOL


def balances_for(profile, symbols, chunks) -> dict:
    return starting_balances(profile, symbols, Stream((), (), True, "test", tuple(symbols), chunks))


def plain_run(profile, symbols, chunks, balances):
    engine = build_engine(profile, symbols, balances)
    wanted = set(symbols) | {FX_SYMBOL}
    for cols in chunks():
        for book in cols.books():
            if book.symbol in wanted:
                engine.on_book(book)
    engine.finish()
    return engine


def fast_run(profile, symbols, chunks, balances, **kw):
    engine = build_engine(profile, symbols, balances, books=LazyBooks())
    replay = FastReplay(engine, **kw)
    replay.run(chunks())
    return engine, replay


def assert_same(fast, plain) -> None:
    """Everything a run reports: orders, fills, round trips, guard decisions, trace, equity, balances."""
    assert fast.trace.orders == plain.trace.orders
    assert fast.trace.fills == plain.trace.fills
    assert fast.portfolio.round_trips == plain.portfolio.round_trips
    assert fast.portfolio.decisions == plain.portfolio.decisions
    assert fast.portfolio.risk.triggers == plain.portfolio.risk.triggers
    assert fast.trace.markers == plain.trace.markers
    assert fast.trace.premium == plain.trace.premium
    assert list(fast.trace.premium) == list(plain.trace.premium)
    assert fast.trace.equity == plain.trace.equity
    assert fast.trace.alerts == plain.trace.alerts
    assert fast.ledger.balances == plain.ledger.balances
    assert (fast.trace.books, fast.trace.evaluations, fast.trace.intents) == \
        (plain.trace.books, plain.trace.evaluations, plain.trace.intents)
    assert fast.now == plain.now
    for name, strat in plain.strategies.items():
        twin = fast.strategies[name]
        assert twin.to_dict() == strat.to_dict() and twin.last_premium == strat.last_premium, name


# -- stream transforms (each returns a fresh-iterator factory) -----------------------------------
def moving_fx(chunks, ticks: int = 3, period_ms: int = 900_000, gap_every: int = 997):
    """Shift the KRW-USDT ladder by up to `ticks` KRW along a slow wave; every `gap_every`-th FX
    row loses its ask side (the rate is then unknown until the next full book)."""
    def out():
        n = 0
        for cols in chunks():
            fx = np.flatnonzero(cols.symbol_code == cols.symbols.index(FX_SYMBOL))
            shift = np.round(ticks * np.sin(cols.ts_ms[fx] / period_ms * 2 * np.pi))
            bid_px, ask_px = cols.bid_px.copy(), cols.ask_px.copy()
            bid_px[fx] += shift[:, None]
            ask_px[fx] += shift[:, None]
            gaps = fx[(n + np.arange(len(fx))) % gap_every == 0]
            ask_px[gaps] = np.nan
            n += len(fx)
            yield replace(cols, bid_px=bid_px, ask_px=ask_px)
    return out


def as_perp(chunks):
    """Binance spot books relabelled as the USDT-M perpetual's."""
    def out():
        for cols in chunks():
            yield replace(cols, venues=tuple("binance_usdm" if v == "binance" else v for v in cols.venues))
    return out


def quiet(chunks, coin: str, venue: str, start_ms: int, end_ms: int):
    """Drop `coin`'s books on `venue` between the two times (the last one before goes stale)."""
    def out():
        for cols in chunks():
            drop = ((cols.symbol_code == cols.symbols.index(coin)) & (cols.venue_code == cols.venues.index(venue))
                    & (cols.ts_ms >= start_ms) & (cols.ts_ms < end_ms))
            keep = ~drop
            yield replace(cols, ts_ms=cols.ts_ms[keep], venue_code=cols.venue_code[keep],
                          symbol_code=cols.symbol_code[keep], bid_px=cols.bid_px[keep], bid_qty=cols.bid_qty[keep],
                          ask_px=cols.ask_px[keep], ask_qty=cols.ask_qty[keep])
    return out
