"""Run paper mode: Ray actors trade live books through ccxt.pro with the backtest's fill model.

Two sources of books: the real Upbit and Binance (profile endpoints on the internet: ccxt's own URLs),
or the local simulator started for the run (loopback endpoints) replaying SYNTHETIC books.
Stops after `duration_s` or when `stop` is set (SIGINT/SIGTERM in main.py); writes a KPI checkpoint
every `outputs.kpi_checkpoint_s`, and at the end the KPI JSON (the backtest's fields, mode "paper")
and the trade log.
"""
from __future__ import annotations

import json
import signal
import threading
import time
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import ccxt
import ray
import redis
from rich.console import Console

from backtest.outputs import write_json_atomic, write_trade_log
from backtest.runner import kpi_document
from domain.symbols import FX_SYMBOL
from domain.venues import CCXT_ID
from marketdata.synthetic import SyntheticConfig, SyntheticMarket
from actors.persistence import Persist
from paper import graph, recording
from paper.universe import Universe, rank_by_traded_value, resolve
from sim import SimThread, ccxt_overrides

REPO = Path(__file__).resolve().parents[1]   # relative paths in a profile are under the repo
SEED_ORDERS = 5   # the profile lists cash only; each coin starts with this many orders' worth on each venue
FEED_VENUES = {"inventory": ("upbit", "binance"), "perp": ("upbit", "binance_usdm")}
SPARE_COINS = 5   # synthetic coins beyond top_n, to replace tickers the venues list as different assets


@dataclass(frozen=True)
class PaperSource:
    """What kpi_document reads from a stream: where the books came from."""

    source: str
    synthetic: bool
    notes: tuple[str, ...]


@dataclass
class Venues:
    """Where the books come from: ccxt configs per venue, the ranked coins, a start price per coin in KRW."""

    ccxt_configs: dict[str, dict]
    ranked: list[str]
    price_krw: dict[str, float]
    source: PaperSource
    start_ms: int | None = None


def is_local(profile) -> bool:
    """Loopback endpoints mean the local simulator (config/checks.py refuses mixed endpoints)."""
    return bool(profile.endpoints) and all("127.0.0.1" in e.rest for e in profile.endpoints.values())


def local_venues(profile, duration_s: float, speed: float, seed: int, stack: ExitStack,
                 after_ms: int | None = None) -> Venues:
    """Start the simulator replaying a SYNTHETIC Top-N (plus spares) for the run's length (a resumed
    run: the same stream from where the run's desk stopped, `after_ms`)."""
    n = profile.universe.top_n or len(profile.symbols() or ())
    start_ms = SyntheticConfig().start_ms
    span_s = (after_ms - start_ms) / 1000 if after_ms else 0.0
    days = (span_s + min(duration_s, 6 * 3600) * speed + 300) / 86_400
    market = SyntheticMarket(SyntheticConfig(coins=min(n + SPARE_COINS, 100), days=days, seed=seed))
    coins = list(market.coins)
    books = market.books() if after_ms is None else (b for b in market.books() if b.ts_ms > after_ms)
    sim = SimThread(books, markets={"upbit": (*coins, FX_SYMBOL), "binance": tuple(coins),
                                    "binance_usdm": ()}, speed=speed)
    urls = sim.start()
    stack.callback(sim.stop)
    rate = market.cal.ratio.mean
    source = PaperSource(f"paper on the local simulator: {market.source} at speed {speed}", True,
                         ("SYNTHETIC books: PnL here is not a market result",))
    return Venues({v: ccxt_overrides(urls, v) for v in FEED_VENUES[profile.strategy.hedge]}, coins,
                  {c: float(px) * rate for c, px in zip(coins, market.price_usdt)}, source, market.config.start_ms)


def real_venues(profile) -> Venues:
    """The real Upbit and Binance through ccxt's default URLs; Top-N ranked by 24 h traded value now."""
    venues = FEED_VENUES[profile.strategy.hedge]
    upbit, binance = ccxt.upbit(), getattr(ccxt, CCXT_ID[venues[1]])()
    up_t, bn_t = upbit.fetch_tickers(), binance.fetch_tickers()
    rate = float(up_t[f"{FX_SYMBOL}/KRW"]["last"])
    wanted = profile.symbols()
    ranked = list(wanted) if wanted else rank_by_traded_value(up_t, bn_t, rate)
    prices = {c: float(up_t[f"{c}/KRW"]["last"]) for c in ranked if up_t.get(f"{c}/KRW", {}).get("last")}
    source = PaperSource("paper on the live Upbit and Binance order books", False, ())
    return Venues({v: {} for v in venues}, ranked, prices, source)


def load_universe(profile, venues: Venues) -> Universe:
    """Load each venue's markets through ccxt and keep the Top-N both list as the same asset."""
    by_id = {}
    for venue, config in venues.ccxt_configs.items():
        exchange = getattr(ccxt, CCXT_ID[venue])(dict(config))
        exchange.load_markets()
        by_id[venue] = exchange.markets_by_id
    universe = resolve(venues.ranked, by_id, profile.universe.top_n)
    if not universe.coins:
        raise ValueError(f"paper: profile {profile.name}: no coin is listed on both venues as the same asset")
    return universe


def seed_coins(coins, price_krw: dict[str, float], order_krw: float, venues: tuple[str, ...]) -> dict:
    """SEED_ORDERS orders' worth of each coin on each venue at its start price."""
    return {(v, coin): SEED_ORDERS * order_krw / price_krw[coin] for coin in coins for v in venues}


def starting_balances(profile, universe: Universe, price_krw: dict[str, float], order_krw: float) -> dict:
    """Profile cash plus the seeded coins (the profile lists cash only)."""
    balances = {(v, a): amt for v, assets in profile.inventory.items() for a, amt in assets.items()}
    balances.update(seed_coins(universe.coins, price_krw, order_krw, FEED_VENUES[profile.strategy.hedge]))
    return balances


def store_url(url: str) -> str:
    """A relative SQLite path is under the repo (Ray workers do not share the driver's cwd); its folder is made."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url[len(prefix):].startswith("/"):
        path = REPO / url[len(prefix):]
        path.parent.mkdir(parents=True, exist_ok=True)
        return prefix + str(path)
    return url


def snapshots_on(profile) -> Persist | None:
    """Snapshots need Redis; without it the run goes on, said loudly, since a crash would lose it."""
    url = profile.storage.redis_url
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        client.close()
    except redis.RedisError as err:
        Console(stderr=True).print(f"[yellow]snapshots off[/]: Redis at {url} unreachable ({err}); "
                                   "a crash would lose this run")
        return None
    return Persist(url, "pending")


def resume_point(persist: Persist, run_id: str) -> int:
    """The desk clock in the run's last coordinator snapshot: where a resumed replay picks up."""
    from snapshots.keys import key
    from snapshots.redis_store import RedisSnapshotStore
    snap = RedisSnapshotStore(persist.redis_url).get(key(run_id, "coordinator", "main"))
    if snap is None:
        raise ValueError(f"resume {run_id}: no coordinator snapshot in Redis at {persist.redis_url}")
    return int(snap.payload["desk"]["now"])


def start_ray(stack: ExitStack) -> str | None:
    """Start Ray for the run unless the caller did (tests share one cluster); return the dashboard address.

    The Ray dashboard lists every actor and its state while the run lasts (loopback only).
    """
    if ray.is_initialized():
        return None
    ctx = ray.init(num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1", log_to_driver=False)
    stack.callback(ray.shutdown)
    dashboard = ctx.dashboard_url or None
    if dashboard:
        Console(stderr=True).print(f"Ray dashboard (actor health): http://{dashboard}")
    return dashboard


def on_signals(handlers: dict, stack: ExitStack) -> None:
    """Install the run's signal handlers (after ray.init, which installs its own SIGTERM handler);
    the previous ones come back when `stack` closes."""
    for sig, handler in handlers.items():
        stack.callback(signal.signal, sig, signal.signal(sig, handler))


def shard_latencies(shard_stats: list[dict]) -> list[float]:
    """Feed receive -> strategy decision samples of every shard (kpi_document makes avg and p99 of them)."""
    return [x for s in shard_stats for x in s["latency_ms"]]


def final_fields(shard_stats: list[dict], feed_stats: dict, desk, started: float, trading_from: float) -> dict:
    """End-of-run KPI fields from the actors: feeds, shards, start-up time."""
    return {"feeds": feed_stats, "strategy_actors": len(shard_stats), "late_books": desk.late_books,
            "startup_s": round(trading_from - started, 3), "checkpoint": False}


def write_results(out_dir: Path, kpi: dict, desk) -> None:
    """The KPI JSON and the trade log (every order, fill, guard decision and round trip)."""
    write_json_atomic(out_dir / "kpi.json", kpi)
    pf = desk.portfolio
    write_trade_log(out_dir / "trades.jsonl", desk.trace.orders, desk.trace.fills, pf.round_trips, pf.decisions)


def run_paper(profile, duration_s: float, *, out_root: Path | None = None, speed: float = 1.0, seed: int = 7,
              shard_size: int | None = None, stop: threading.Event | None = None, flush_ms: float | None = None,
              handle_signals: bool = False, record_dir: Path | None = None, live_table: bool = False,
              resume: str | None = None) -> dict:
    """Run the actors until `duration_s` or `stop`; return the KPI document. `shard_size` and `flush_ms`
    default to the profile's `actors` section.

    `resume` (a run id): the run was killed; every actor restores from its Redis snapshot, the same
    run id and output directory go on, and its KPI totals continue."""
    if profile.mode != "paper":
        raise ValueError(f"run_paper: profile {profile.name} has mode {profile.mode!r}, expected 'paper'")
    local = is_local(profile)
    if local and profile.strategy.hedge == "perp":
        raise ValueError(f"run_paper: profile {profile.name}: the synthetic generator has no USDT-M books; "
                         "use strategy.hedge: inventory")
    shard_size = shard_size or profile.actors.symbols_per_strategy
    flush_ms = flush_ms or profile.actors.flush_ms
    started = time.time()
    stop = stop or threading.Event()
    run_id = resume or f"{profile.name}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S%fZ')}"
    out_dir = (out_root or profile.outputs_dir()) / run_id
    persist = snapshots_on(profile)
    persist = replace(persist, run_id=run_id) if persist is not None else None
    after_ms = None
    if resume:
        if persist is None:
            raise ValueError(f"resume {run_id}: needs Redis (the actors' snapshots) at {profile.storage.redis_url}")
        before = json.loads((out_dir / "running.json").read_text())
        seed, speed, shard_size = before["seed"], before["speed"], before["shard_size"]
        started = before["started_epoch"]
        persist = persist.restarted(1)            # every actor must find its snapshot
        after_ms = resume_point(persist, run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    if record_dir is not None:
        record_dir = Path(record_dir) / run_id
        record_dir.mkdir(parents=True, exist_ok=True)
    params = profile.to_domain()
    with ExitStack() as stack:
        venues = local_venues(profile, duration_s, speed, seed, stack, after_ms) if local else real_venues(profile)
        universe = load_universe(profile, venues)
        if resume and list(universe.coins) != before["coins"]:
            raise ValueError(f"resume {run_id}: the universe changed ({before['coins']} -> {list(universe.coins)})")
        balances = starting_balances(profile, universe, venues.price_krw, params.strategy.order_notional_krw)
        dashboard = start_ray(stack)
        if handle_signals:
            on_signals({signal.SIGINT: lambda *_: stop.set(), signal.SIGTERM: lambda *_: stop.set()}, stack)
        from alerts.config import from_profile as alerts_from_profile
        actors = graph.start(params, universe, balances, venues.ccxt_configs, shard_size=shard_size,
                             flush_ms=flush_ms, record_dir=record_dir, synthetic=venues.source.synthetic, tag=run_id,
                             alerts_config=alerts_from_profile(profile.alerts), alerts_dir=REPO,
                             metrics_port=profile.metrics.port, persist=persist,
                             store_url=store_url(profile.storage.url))
        if actors.metrics_url:
            Console(stderr=True).print(f"Prometheus metrics: {actors.metrics_url}")
        try:
            write_json_atomic(out_dir / "running.json", {
                "run_id": run_id, "coins": list(universe.coins), "actors": sorted(actors.handles()),
                "ray_dashboard": f"http://{dashboard}" if dashboard else None, "metrics_url": actors.metrics_url,
                "starting_balances": [[v, a, x] for (v, a), x in sorted(balances.items())],
                "seed": seed, "speed": speed, "shard_size": shard_size, "started_epoch": started,
                "snapshots": persist is not None, "resumed": bool(resume)})
            source = PaperSource(venues.source.source, venues.source.synthetic,
                                 venues.source.notes + tuple(universe.notes()))

            def kpi_now(desk, latencies, extra) -> dict:
                kpi = kpi_document(profile, desk, source, run_id, started, latencies, 0, out_dir,
                                   (venues.start_ms or started * 1000, desk.now))
                kpi.update({"mode": "paper", **extra})
                return kpi

            trading_from = time.time()   # --duration counts trading time, not the start-up (Ray, universe)
            wait(profile, actors, stop, trading_from, duration_s, live_table,
                 lambda desk: write_json_atomic(out_dir / "kpi.json", kpi_now(desk, [], {"checkpoint": True,
                                                                                       "exit_code": None})))
        finally:
            health = graph.health(actors)
            feed_stats, shard_stats, desk = graph.stop(actors)
        if record_dir is not None:
            recorded = recording.merge(record_dir, list(venues.ccxt_configs), f"recorded {venues.source.source}",
                                       venues.source.synthetic)
    kpi = kpi_now(desk, shard_latencies(shard_stats), {
        **final_fields(shard_stats, feed_stats, desk, started, trading_from),
        "recorded_to": str(recorded) if record_dir is not None else None,
        "snapshot_success_rate_pct": health["snapshot_success_rate_pct"], "snapshots": health["snapshots"],
        "restarts": health["restarts"], "resumed": bool(resume)})
    write_results(out_dir, kpi, desk)
    return kpi


def wait(profile, actors: graph.ActorGraph, stop: threading.Event, started: float, duration_s: float,
         live_table: bool, checkpoint, on_tick=None) -> None:
    """Until the duration is up or `stop` is set: refresh the status table, checkpoint the KPIs on time.

    `on_tick()` runs on every pass, a quarter second apart at most (live serves the kill switch there).
    """
    from rich.live import Live

    from reporting.terminal import StatusTable

    every = profile.outputs.kpi_checkpoint_s
    next_checkpoint = started + every
    table = StatusTable(title=f"{profile.name} ({profile.mode})")
    restarts = 0
    with Live(table, refresh_per_second=2, transient=False) if live_table else nullcontext():
        while not stop.is_set():
            if on_tick is not None:
                on_tick()
                if stop.is_set():
                    return
            now = time.time()
            if now - started >= duration_s:
                return
            if actors.supervisor is not None:   # an actor came back with a new handle: tell its peers
                records = ray.get(actors.supervisor.restart_records.remote())
                if len(records) != restarts:
                    graph.rewire(actors)
                    restarts = len(records)
            if now >= next_checkpoint:
                checkpoint(ray.get(actors.coordinator.checkpoint.remote()))
                next_checkpoint = now + every
            if live_table:
                table.update(ray.get(actors.coordinator.status.remote()))
            stop.wait(min(0.25, max(0.0, duration_s - (now - started)), max(0.0, next_checkpoint - now)))
