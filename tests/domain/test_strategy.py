"""Strategy rules on the real books: entries net of fees both ways, each exit reason, staleness."""
from __future__ import annotations

from dataclasses import replace

import pytest

from domain.orders import Direction, Purpose
from domain.params import StrategyParams
from domain.premium import fx_fixed
from domain.strategy import PositionView, SymbolStrategy

FEES = 2 * (0.0005 + 0.001)   # four taker fees: Upbit KRW 0.05%, Binance spot 0.10%


def shifted(book, factor):
    return replace(book, bids=tuple((p * factor, q) for p, q in book.bids),
                   asks=tuple((p * factor, q) for p, q in book.asks))


@pytest.fixture
def books(upbit_books, binance_books):
    up, bn = upbit_books[4], binance_books[0]
    now = max(up.ts_ms, bn.ts_ms)
    return now, replace(up, ts_ms=now), replace(bn, ts_ms=now)


def absolute(**kw):
    return StrategyParams(mode="absolute", order_notional_krw=5_000_000, entry_edge_bps=10, **kw)


def test_no_entry_when_the_premium_does_not_cover_the_four_fees(books):
    now, up, bn = books
    s = SymbolStrategy("BTC", absolute(), FEES)
    assert s.on_books(now, up, bn, fx_fixed(1383.7)) is None   # premium ~0 bps: fees not covered


def test_upbit_rich_entry_needs_premium_beyond_fees_plus_edge(books):
    now, up, bn = books
    rich_up = shifted(up, 1.0045)                                # +45 bps: 30 fees + 10 edge covered
    s = SymbolStrategy("BTC", absolute(), FEES)
    intent = s.on_books(now, rich_up, bn, fx_fixed(1383.7))
    assert intent.direction is Direction.RICH and intent.purpose is Purpose.ENTRY
    assert intent.premium * 1e4 > 40 and intent.qty == pytest.approx(5_000_000 / rich_up.mid)
    s2 = SymbolStrategy("BTC", absolute(), FEES)
    assert s2.on_books(now, shifted(up, 1.0035), bn, fx_fixed(1383.7)) is None  # +35 bps is not enough


def test_upbit_cheap_entry_is_the_mirror(books):
    now, up, bn = books
    s = SymbolStrategy("BTC", absolute(), FEES)
    intent = s.on_books(now, shifted(up, 0.9955), bn, fx_fixed(1383.7))
    assert intent.direction is Direction.CHEAP


def test_size_is_capped_by_depth(books):
    now, up, bn = books
    s = SymbolStrategy("BTC", replace(absolute(), order_notional_krw=1e9, depth_fraction=0.5), FEES)
    intent = s.on_books(now, shifted(up, 1.006), bn, fx_fixed(1383.7))
    shown = sum(q for _, q in up.bids[:10])
    assert intent.qty == pytest.approx(0.5 * shown, rel=1e-6)


@pytest.mark.parametrize("factor, reason", [(1.0045 - 0.0005, None), (1.0, "take_profit"),
                                            (1.0100, "stop_loss")])
def test_exit_reasons(books, factor, reason):
    now, up, bn = books
    s = SymbolStrategy("BTC", absolute(take_profit_bps=5, stop_loss_bps=50, exit_edge_bps=-100), FEES)
    s.on_opened(PositionView("BTC-p1", Direction.RICH, 0.03, 0.0045, now))   # sold rich at +45 bps
    intent = s.on_books(now + 1, shifted(up, factor), bn, fx_fixed(1383.7))
    assert (intent.reason if intent else None) == reason


def test_reversal_and_time_limit_exits(books):
    now, up, bn = books
    s = SymbolStrategy("BTC", absolute(take_profit_bps=500, stop_loss_bps=500, exit_edge_bps=5), FEES)
    s.on_opened(PositionView("BTC-p1", Direction.RICH, 0.03, 0.0045, now))
    assert s.on_books(now + 1, up, bn, fx_fixed(1383.7)).reason == "reversal"   # back to the 0 baseline
    t = SymbolStrategy("BTC", absolute(take_profit_bps=500, stop_loss_bps=500, exit_edge_bps=-500,
                                       max_hold_ms=1000), FEES)
    t.on_opened(PositionView("BTC-p1", Direction.RICH, 0.03, 0.0045, now))
    later = now + 1000
    assert t.on_books(later, replace(up, ts_ms=later), replace(bn, ts_ms=later), fx_fixed(1383.7)).reason == "time_limit"


def test_stale_books_are_not_traded(books):
    now, up, bn = books
    s = SymbolStrategy("BTC", absolute(max_book_age_ms=5000), FEES)
    assert s.on_books(now + 6000, shifted(up, 1.006), bn, fx_fixed(1383.7)) is None


def test_cooldown_after_exit_and_snapshot_round_trip(books):
    now, up, bn = books
    s = SymbolStrategy("BTC", absolute(cooldown_ms=60_000), FEES)
    s.on_closed(now)
    assert s.on_books(now + 1, shifted(up, 1.006), bn, fx_fixed(1383.7)) is None
    again = SymbolStrategy("BTC", absolute(cooldown_ms=60_000), FEES)
    again.restore(s.to_dict())
    assert again.to_dict() == s.to_dict()


def test_a_refused_entry_waits_the_reject_cooldown_a_refused_exit_does_not(books):
    now, up, bn = books
    fx = fx_fixed(1383.7)

    def decide(t, upbit_factor):          # the books as of t
        return s.on_books(t, replace(shifted(up, upbit_factor), ts_ms=t), replace(bn, ts_ms=t), fx)
    s = SymbolStrategy("BTC", absolute(reject_cooldown_ms=10_000), FEES)
    entry = decide(now, 1.006)
    assert entry is not None and entry.purpose is Purpose.ENTRY
    s.on_rejected(now)                                # a guard refused it
    assert decide(now + 9_999, 1.006) is None         # not asked again on every book
    assert decide(now + 10_000, 1.006) is not None    # asked again after the cooldown
    s.on_opened(PositionView("BTC-p1", entry.direction, entry.qty, entry.premium, now))
    out = decide(now + 20_000, 0.99)
    assert out is not None and out.purpose is Purpose.EXIT
    s.on_rejected(now + 20_000)                       # an exit is retried on the next book
    assert decide(now + 20_001, 0.99) is not None


def test_zscore_waits_for_the_window_then_enters_on_a_stretch(books):
    now, up, bn = books
    p = StrategyParams(mode="zscore", z_entry=2.0, z_window=30, z_min_samples=20, z_sample_ms=1000,
                       entry_edge_bps=10, order_notional_krw=5_000_000)
    s = SymbolStrategy("BTC", p, FEES)
    fx = fx_fixed(1383.7)
    for i in range(25):  # a calm window: the premium wobbles by ~1 bp
        t = now + i * 1000
        wobble = 1 + (i % 3 - 1) * 1e-4
        assert s.on_books(t, replace(shifted(up, wobble), ts_ms=t), replace(bn, ts_ms=t), fx) is None
    t = now + 25 * 1000
    intent = s.on_books(t, replace(shifted(up, 1.006), ts_ms=t), replace(bn, ts_ms=t), fx)
    assert intent is not None and intent.direction is Direction.RICH and intent.reason.startswith("z=")
