"""Run paper mode: the simulator replays SYNTHETIC books on loopback, Ray actors trade them through ccxt.pro.

Stops after `duration_s` or when `stop` is set (SIGINT/SIGTERM in main.py), then writes the KPI JSON
(the backtest's fields, mode "paper") and the trade log.
"""
from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import ray

from backtest.outputs import write_json_atomic, write_trade_log
from backtest.runner import kpi_document
from domain.kpi import percentile
from domain.symbols import FX_SYMBOL
from marketdata.synthetic import SyntheticConfig, SyntheticMarket
from sim import SimThread, ccxt_overrides

SEED_ORDERS = 5   # the profile lists cash only; each coin starts with this many orders' worth on each venue
FEED_VENUES = {"inventory": ("upbit", "binance"), "perp": ("upbit", "binance_usdm")}


@dataclass(frozen=True)
class PaperSource:
    """What kpi_document reads from a stream: where the books came from."""

    source: str
    synthetic: bool
    notes: tuple[str, ...]


def _shards(symbols: list[str], size: int) -> list[list[str]]:
    if size < 1:
        raise ValueError(f"paper: shard size {size} must be >= 1")
    return [symbols[i:i + size] for i in range(0, len(symbols), size)]


def seed_coins(market: SyntheticMarket, order_krw: float, venues: tuple[str, ...]) -> dict:
    """Coin inventory per symbol on both venues: SEED_ORDERS orders' worth at the generator's start price."""
    krw_per_usdt = market.cal.ratio.mean
    return {(v, coin): SEED_ORDERS * order_krw / (float(px) * krw_per_usdt)
            for coin, px in zip(market.coins, market.price_usdt) for v in venues}


def run_paper(profile, duration_s: float, *, out_root: Path | None = None, speed: float = 1.0, seed: int = 7,
              shard_size: int = 10, stop: threading.Event | None = None, flush_ms: int = 20, handle_signals: bool = False) -> dict:
    """Run the actors against a started simulator until `duration_s` or `stop`; return the KPI document."""
    if profile.mode != "paper":
        raise ValueError(f"run_paper: profile {profile.name} has mode {profile.mode!r}, expected 'paper'")
    if profile.strategy.hedge == "perp":
        raise ValueError(f"run_paper: profile {profile.name}: the synthetic generator has no USDT-M books; "
                         "use strategy.hedge: inventory")
    started = time.time()
    stop = stop or threading.Event()
    run_id = f"{profile.name}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S%fZ')}"
    out_dir = (out_root or profile.outputs_dir()) / run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    n = profile.universe.top_n or len(profile.symbols() or ())
    market = SyntheticMarket(SyntheticConfig(coins=n, days=(duration_s * speed + 120) / 86_400, seed=seed))
    symbols = list(market.coins)
    params = profile.to_domain()
    balances = {(v, a): amt for v, assets in profile.inventory.items() for a, amt in assets.items()}
    balances.update(seed_coins(market, params.strategy.order_notional_krw, FEED_VENUES[profile.strategy.hedge]))
    sim = SimThread(market.books(), markets={"upbit": (*symbols, FX_SYMBOL), "binance": tuple(symbols),
                                             "binance_usdm": ()}, speed=speed)
    urls = sim.start()
    own_ray = not ray.is_initialized()
    if own_ray:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    if handle_signals:   # after ray.init, which installs its own SIGTERM handler
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    try:
        from actors.coordinator import PortfolioRiskCoordinator
        from actors.feed import ExchangeFeedActor
        from actors.strategy import SymbolStrategyActor
        coord = PortfolioRiskCoordinator.remote(symbols, params, balances)
        shards = [(SymbolStrategyActor.remote(s, params.strategy, params.market, params.fx, coord), s)
                  for s in _shards(symbols, shard_size)]
        ray.get(coord.set_routes.remote({sym: h for h, syms in shards for sym in syms}))
        sinks = [(coord, None)] + [(h, frozenset(s) | {FX_SYMBOL}) for h, s in shards]
        feeds = [ExchangeFeedActor.remote(v, ccxt_overrides(urls, v), symbols + ([FX_SYMBOL] if v == "upbit" else []),
                                          sinks, flush_ms) for v in FEED_VENUES[profile.strategy.hedge]]
        ray.get([f.start.remote() for f in feeds])
        write_json_atomic(out_dir / "running.json", {"run_id": run_id, "symbols": symbols, "strategy_actors": len(shards)})
        left = duration_s - (time.time() - started)
        stop.wait(None if left == float("inf") else max(0.0, left))
        feed_stats = ray.get([f.stop.remote() for f in feeds])
        shard_stats = ray.get([h.stats.remote() for h, _ in shards])   # queued batches are done once this returns
        desk = ray.get(coord.finish.remote())
    finally:
        sim.stop()
        if own_ray:
            ray.shutdown()
    latencies = [x for s in shard_stats for x in s["latency_ms"]]
    source = PaperSource(f"paper on the local simulator: {market.source} at speed {speed}", True,
                         ("SYNTHETIC books: PnL here is not a market result",))
    kpi = kpi_document(profile, desk, source, run_id, started, latencies, 0, out_dir,
                       (market.config.start_ms, desk.now))
    kpi.update({"mode": "paper", "tick_to_decision_ms_avg": round(sum(latencies) / max(len(latencies), 1), 4),
                "tick_to_decision_ms_p99": round(percentile(latencies, 99), 4) if latencies else 0.0,
                "feeds": {v: s for v, s in zip(FEED_VENUES[profile.strategy.hedge], feed_stats)},
                "strategy_actors": len(shards), "late_books": desk.late_books})
    write_json_atomic(out_dir / "kpi.json", kpi)
    pf = desk.portfolio
    write_trade_log(out_dir / "trades.jsonl", desk.trace.orders, desk.trace.fills, pf.round_trips, pf.decisions)
    return kpi
