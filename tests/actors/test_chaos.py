"""Chaos: the lockstep paper replay (real Ray actors, ccxt.pro feeds, the loopback simulator, real Redis
snapshots, the Supervisor) with actors killed at random points, at least 20 kills over every kind of
actor (feeds, strategies, coordinator, alert dispatcher), including with entry legs in flight. Nothing
may be lost or doubled: the run must end with exactly the round trips, orders and fills of the same
replay without chaos (the backtest engine, which tests/actors/test_lockstep_parity.py proves equal to
the clean lockstep run), and every round trip's alert must reach the alert log (at least once)."""
from __future__ import annotations

import json
import random
import time
from dataclasses import replace

import ray

from alerts.config import AlertsConfig
from config.loader import load_profile
from domain.engine import Engine
from domain.symbols import FX_SYMBOL
from marketdata.synthetic import SyntheticConfig, SyntheticMarket
from paper import graph, lockstep
from paper.run import PaperSource, Venues, load_universe, seed_coins
from sim import SimThread, ccxt_overrides
from supervisors.policy import RestartPolicy
from tests.support.parity import assert_trades_like_the_engine

SECONDS = 30
KILLS = 22


def restarts_of(actors, name: str) -> int:
    return sum(r["actor"] == name for r in ray.get(actors.supervisor.restart_records.remote()))


def wait_restarted(actors, name: str, before: int, timeout_s: float = 60.0) -> dict:
    """Until the supervisor has recorded one more restart of `name`; return that record."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        records = [r for r in ray.get(actors.supervisor.restart_records.remote()) if r["actor"] == name]
        if len(records) > before:
            return records[-1]
        time.sleep(0.05)
    raise AssertionError(f"{name} was not restarted within {timeout_s}s: "
                         f"{ray.get(actors.supervisor.status.remote())}")


def test_twenty_kills_lose_no_position_and_double_no_fill(ray_cluster, run_id, persist, tmp_path):
    profile = load_profile("paper-top50-local")
    params = profile.to_domain()
    strat = replace(params.strategy, mode="absolute", baseline_bps=-2000.0, max_hold_ms=4000, cooldown_ms=1000)
    params = replace(params, strategy=strat)
    market = SyntheticMarket(SyntheticConfig(coins=4, days=SECONDS / 86_400, seed=11))
    books = list(market.books())
    coins = list(market.coins)
    rate = market.cal.ratio.mean
    prices = {c: float(px) * rate for c, px in zip(coins, market.price_usdt)}
    balances = {(v, a): x for v, assets in profile.inventory.items() for a, x in assets.items()}
    balances.update(seed_coins(coins, prices, strat.order_notional_krw, ("upbit", "binance")))

    engine = Engine(coins, params.strategy, params.risk, params.market, params.fx, dict(balances))
    for book in books:
        engine.on_book(book)
    engine.finish()

    rng = random.Random(5)
    steps = lockstep.instants(books)
    kill_at = set(rng.sample(range(5, len(steps) - 5), KILLS))
    victims = ["coordinator", "strategy-0", "strategy-1", "feed-upbit", "feed-binance", "alerts"]
    alerts_log = tmp_path / "alerts.log"
    restarts: list[dict] = []
    with SimThread(books, markets={"upbit": (*coins, FX_SYMBOL), "binance": tuple(coins), "binance_usdm": ()}) as sim:
        configs = {v: ccxt_overrides(sim.urls(), v) for v in ("upbit", "binance")}
        universe = load_universe(profile, Venues(configs, coins, {}, PaperSource("sim", True, ())))
        lockstep.prime(sim, books)
        actors = graph.start(params, universe, balances, configs, shard_size=2, flush_ms=0, clocked=True,
                             tag=run_id, persist=persist,
                             alerts_config=AlertsConfig(log_file=str(alerts_log)),
                             policy=RestartPolicy(max_restarts=50, window_s=600, backoff_base_s=0.0))
        try:
            lockstep.wait_subscribed(actors, books)
            for n, (ts, group) in enumerate(steps):
                sim.advance_to(ts)
                lockstep.wait_received(actors, group)
                lockstep.step(actors, ts)
                if n in kill_at:
                    name = victims[len(restarts) % len(victims)]
                    before = restarts_of(actors, name)
                    handle = actors.handles()[name]
                    ray.kill(handle, no_restart=True)
                    restarts.append(wait_restarted(actors, name, before))
                    graph.rewire(actors)
                    if name.startswith("feed-"):
                        lockstep.wait_subscribed(actors, books)
            feed_stats, _, desk = graph.stop(actors)
        finally:
            ray.kill(actors.supervisor) if actors.supervisor is not None else None

    print("\n".join(f"restart {r['actor']}: death -> trading again {r['death_to_trading_s']:.3f}s"
                    for r in restarts))
    assert len(restarts) >= 20 and {r["actor"] for r in restarts} == set(victims)
    assert_trades_like_the_engine(desk, engine, min_round_trips=6)

    alerted = [json.loads(line) for line in alerts_log.read_text().splitlines()]
    closed = [a["fields"]["position_id"] for a in alerted if a["kind"] == "round_trip"]
    print(f"round-trip alerts in the log: {len(closed)} for {len(desk.portfolio.round_trips)} round trips "
          f"({len(closed) - len(set(closed))} sent again after a restart)")
    assert set(closed) == {rt.position_id for rt in desk.portfolio.round_trips}, "a round trip's alert was lost"
