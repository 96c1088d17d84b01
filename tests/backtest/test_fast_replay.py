"""The fast replay decides exactly as the plain per-event path: same orders, fills, round trips, KPIs."""
from __future__ import annotations

import pytest

from backtest.fast_replay import FastReplay, LazyBooks
from backtest.outputs import WALL_CLOCK_FIELDS
from backtest.runner import build_engine, run_backtest, starting_balances
from bench.scenarios import synthetic_profile, synthetic_stream

COINS, DAYS = 5, 0.1  # 95,040 books; the z-score window is ready after 10 minutes


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    profile = synthetic_profile(COINS, trading=True)
    out = tmp_path_factory.mktemp("fast")
    return {fast: run_backtest(profile, out_root=out, stream=synthetic_stream(COINS, DAYS), progress=False,
                               report=False, fast=fast) for fast in (True, False)}


def test_the_stream_trades(both):
    kpi = both[False].kpi
    assert kpi["round_trips"] >= 3 and kpi["entries"] >= kpi["round_trips"]
    assert len(both[False].engine.trace.fills) >= 4 * kpi["round_trips"]


def test_same_orders_fills_and_round_trips(both):
    fast, plain = both[True].engine, both[False].engine
    assert fast.trace.orders == plain.trace.orders
    assert fast.trace.fills == plain.trace.fills
    assert fast.portfolio.round_trips == plain.portfolio.round_trips
    assert fast.portfolio.decisions == plain.portfolio.decisions
    assert fast.trace.markers == plain.trace.markers and fast.trace.premium == plain.trace.premium
    assert fast.trace.equity == plain.trace.equity
    assert fast.ledger.balances == plain.ledger.balances


def test_same_kpis_apart_from_wall_clock(both):
    stable = [{k: v for k, v in r.kpi.items() if k not in WALL_CLOCK_FIELDS} for r in (both[True], both[False])]
    assert stable[0] == stable[1]
    assert stable[0]["evaluations"] > stable[0]["book_events"]  # FX books make every coin evaluate


def test_fast_path_builds_few_books():
    """The point of the fast path: most rows never become a Book."""
    profile = synthetic_profile(COINS, trading=False)
    stream = synthetic_stream(COINS, 0.02)
    engine = build_engine(profile, list(stream.symbols), starting_balances(profile, list(stream.symbols), stream),
                          books=LazyBooks())
    FastReplay(engine).run(stream.columns())
    assert engine.trace.books == 19_008
    assert 0 < engine.books.built < engine.trace.books / 3


def test_out_of_order_rows_are_refused():
    profile = synthetic_profile(COINS, trading=False)
    stream = synthetic_stream(COINS, 0.001)
    engine = build_engine(profile, list(stream.symbols), books=LazyBooks())
    cols = next(stream.columns())
    replay = FastReplay(engine)
    replay.apply(cols)
    with pytest.raises(ValueError, match="older than the clock"):
        replay.apply(cols)


def test_needs_a_lazy_book_map():
    profile = synthetic_profile(COINS, trading=False)
    with pytest.raises(TypeError, match="LazyBooks"):
        FastReplay(build_engine(profile, ["BTC"]))
