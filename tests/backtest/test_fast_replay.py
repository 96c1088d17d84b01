"""The fast replay decides exactly as the plain per-event path: same orders, fills, round trips, KPIs."""
from __future__ import annotations

import pytest

from backtest.fast_replay import FastReplay, LazyBooks
from backtest.outputs import WALL_CLOCK_FIELDS
from backtest.runner import build_engine, run_backtest, starting_balances
from bench.scenarios import synthetic_profile, synthetic_stream
from marketdata.parquet_books import read_book_columns
from marketdata.synthetic import SyntheticConfig, SyntheticMarket
from tests.backtest.parity import as_perp, assert_same, balances_for, fast_run, moving_fx, plain_run, quiet

COINS, DAYS = 5, 0.1  # 95,040 books; the z-score window is ready after 10 minutes
# Quick samples, a low entry bar and wide stop: positions stay open for many books and end
# by every exit rule (stop-loss, take-profit, reversal, time limit).
HELD = {"z_sample_ms": 2000, "z_min_samples": 20, "z_window": 120, "z_entry": 0.5, "entry_edge_bps": 0.5,
        "take_profit_bps": 3, "stop_loss_bps": 25, "exit_edge_bps": -2, "max_hold_ms": 400_000, "cooldown_ms": 5000}
FUNDING_MS = 8 * 3_600_000


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


def test_positions_held_over_thousands_of_books_exit_exactly_as_the_per_event_path():
    """The exit screen skips the exact exit rules for most open-position books, and changes nothing."""
    profile = synthetic_profile(4, trading=True, strategy=HELD)
    stream = synthetic_stream(4, 0.04)
    symbols = list(stream.symbols)
    balances = balances_for(profile, symbols, stream.columns)
    fast, replay = fast_run(profile, symbols, stream.columns, balances)
    plain = plain_run(profile, symbols, stream.columns, balances)
    assert_same(fast, plain)
    trips = plain.portfolio.round_trips
    assert {"stop_loss", "take_profit", "reversal", "time_limit"} <= {rt.exit_reason for rt in trips}
    held_s = sum(rt.exit_ts_ms - rt.entry_ts_ms for rt in trips) / 1000
    assert held_s > 3600          # each coin touches ~2.5 times a second: thousands of open-position books
    assert replay.exact_evaluations < held_s / 5


def _scenario(name, tmp_path):
    """(profile, coins, chunk factory) for the less common branches of the fast path."""
    coins = 3
    profile = synthetic_profile(coins, trading=True, strategy=HELD)
    stream = synthetic_stream(coins, 0.03)
    chunks = stream.columns
    if name == "moving_rate":
        chunks = moving_fx(chunks)
    elif name == "fixed_rate":
        profile = synthetic_profile(coins, trading=True, strategy=HELD,
                                    fx={"source": "fixed", "fixed_usdt_krw": 1376.6})
    elif name == "perp_funding":
        start = (1_756_000_000_000 // FUNDING_MS + 1) * FUNDING_MS - 1_200_000   # 20 minutes before funding
        stream = synthetic_stream(coins, 0.03, start_ms=start)
        chunks = as_perp(stream.columns)
        profile = synthetic_profile(coins, trading=True, strategy={**HELD, "hedge": "perp"},
                                    execution={"funding_rate_8h": 0.001})
        profile = profile.model_copy(update={"inventory": {"upbit": {"KRW": 1e9}, "binance_usdm": {"USDT": 7.5e5}},
                                             "inventory_per_coin_krw": {"upbit": 2e7}})
    elif name == "slow_fills":   # fills land between instants the fast path skips: the clock must be theirs
        profile = synthetic_profile(coins, trading=True, strategy=HELD,
                                    venues={"upbit": {"latency_ms": 0}, "binance": {"latency_ms": 700}})
    elif name == "zero_latency_complete":
        profile = synthetic_profile(coins, trading=True, strategy=HELD, execution={"leg_risk_policy": "complete"},
                                    venues={v: {"latency_ms": 0} for v in ("upbit", "binance")})
    elif name == "guards_bind":
        profile = synthetic_profile(coins, trading=True, strategy=HELD,
                                    risk={"max_open_positions": 1, "daily_loss_limit_krw": 700.0})
    elif name == "parquet_quiet_coin":
        market = SyntheticMarket(SyntheticConfig(coins=coins + 1, days=0.03, seed=7))
        path = tmp_path / "books.parquet"
        t0 = market.config.start_ms
        with_gap = quiet(market.column_chunks, market.coins[0], "binance", t0 + 900_000, t0 + 1_300_000)
        from marketdata.parquet_books import BookWriter
        with BookWriter(path, source="test", synthetic=True, rows_per_group=997) as writer:  # splits instants
            for cols in with_gap():
                writer.append_columns(cols)
        chunks = lambda: read_book_columns(path)  # noqa: E731
        return profile, list(market.coins[:coins]), chunks   # the fourth coin is in the file, not the universe
    return profile, list(stream.symbols), chunks


@pytest.mark.parametrize("name", ["moving_rate", "fixed_rate", "perp_funding", "slow_fills", "zero_latency_complete",
                                  "guards_bind", "parquet_quiet_coin"])
def test_fast_path_equals_the_per_event_path(name, tmp_path):
    profile, symbols, chunks = _scenario(name, tmp_path)
    balances = balances_for(profile, symbols, chunks)
    fast, _ = fast_run(profile, symbols, chunks, balances)
    plain = plain_run(profile, symbols, chunks, balances)
    assert_same(fast, plain)
    assert len(plain.portfolio.round_trips) >= 3
    if name == "perp_funding":
        assert any(rt.funding_krw for rt in plain.portfolio.round_trips)
    if name == "guards_bind":
        assert {"max_open_positions", "daily_loss"} <= set(plain.portfolio.risk.triggers)
