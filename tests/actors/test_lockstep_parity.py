"""Parity: paper mode (real Ray actors, ccxt.pro feeds, the loopback simulator) replaying a stream in
lockstep enters and exits the same round trips as the in-process backtest engine on the same stream."""
from __future__ import annotations

from dataclasses import replace

import pytest

from config.loader import load_profile
from domain.engine import Engine
from domain.symbols import FX_SYMBOL
from marketdata.synthetic import SyntheticConfig, SyntheticMarket
from paper import graph, lockstep
from paper.run import PaperSource, Venues, load_universe, seed_coins
from sim import SimThread, ccxt_overrides

SECONDS = 25


@pytest.fixture(scope="module")
def stream():
    """A SYNTHETIC 4-coin stream, and rules that trade within seconds: every premium looks stretched
    against a -2000 bps baseline, and the short max hold closes what opened (loss-making on purpose)."""
    profile = load_profile("paper-top50-local")
    params = profile.to_domain()
    strat = replace(params.strategy, mode="absolute", baseline_bps=-2000.0, max_hold_ms=4000, cooldown_ms=1000)
    params = replace(params, strategy=strat)
    market = SyntheticMarket(SyntheticConfig(coins=4, days=SECONDS / 86_400, seed=11))
    books = [b for b in market.books()]
    rate = market.cal.ratio.mean
    prices = {c: float(px) * rate for c, px in zip(market.coins, market.price_usdt)}
    balances = {(v, a): x for v, assets in profile.inventory.items() for a, x in assets.items()}
    balances.update(seed_coins(market.coins, prices, strat.order_notional_krw, ("upbit", "binance")))
    return profile, params, market, books, balances


def test_lockstep_paper_on_the_simulator_trades_exactly_like_the_backtest_engine(ray_cluster, stream):
    profile, params, market, books, balances = stream
    coins = list(market.coins)
    with SimThread(books, markets={"upbit": (*coins, FX_SYMBOL), "binance": tuple(coins), "binance_usdm": ()}) as sim:
        configs = {v: ccxt_overrides(sim.urls(), v) for v in ("upbit", "binance")}
        universe = load_universe(profile, Venues(configs, coins, {}, PaperSource("sim", True, ())))
        assert list(universe.coins) == coins
        lockstep.prime(sim, books)
        actors = graph.start(params, universe, balances, configs, shard_size=2, flush_ms=0, clocked=True,
                             tag="lockstep-parity")
        try:
            stats = lockstep.replay(sim, actors, books)
        finally:
            feed_stats, _, desk = graph.stop(actors)
    engine = Engine(coins, params.strategy, params.risk, params.market, params.fx, dict(balances))
    for book in books:
        engine.on_book(book)
    engine.finish()

    def trips(rts):
        return [(rt.symbol, rt.direction.value, rt.entry_ts_ms, rt.exit_ts_ms, rt.exit_reason, round(rt.pnl_krw, 2))
                for rt in rts]
    paper, backtest = trips(desk.portfolio.round_trips), trips(engine.portfolio.round_trips)
    print(f"lockstep: {stats.instants} instants, {stats.books} books in {stats.wall_s:.1f}s; "
          f"{len(paper)} round trips paper, {len(backtest)} backtest")
    assert len(backtest) >= 8
    same = set(paper) & set(backtest)
    assert len(same) >= 0.95 * max(len(paper), len(backtest))
    paper_pnl = sum(rt.pnl_krw for rt in desk.portfolio.round_trips)
    backtest_pnl = sum(rt.pnl_krw for rt in engine.portfolio.round_trips)
    assert paper_pnl == pytest.approx(backtest_pnl, rel=0.02)
    assert paper == backtest, "lockstep is deterministic: every round trip should match"
    assert all(s["malformed"] == 0 and s["resyncs"] == 0 for s in feed_stats.values()), feed_stats
