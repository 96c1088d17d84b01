"""Run a backtest: replay a profile's data through the engine, then write KPIs, trades and report."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from backtest.fast_replay import FastReplay, LazyBooks
from backtest.sharded import ShardedScans, split
from backtest.outputs import process_usage, write_json_atomic, write_trade_log
from backtest.streams import Stream, from_profile
from domain.engine import Engine
from domain.kpi import percentile, trading_kpis
from domain.symbols import FX_SYMBOL

LATENCY_SAMPLE_EVERY = 16  # time one event in 16: enough for avg/p99 without slowing the loop
WORKER_SHARE = 1.0         # the second process starts with every coin's scans; it hands some back while busier


@dataclass
class RunResult:
    run_id: str
    out_dir: Path
    kpi: dict
    engine: Engine
    stream: Stream


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def universe(profile, stream: Stream) -> list[str]:
    """The profile's coin list, or (top_n) the first coins of the data's ranking."""
    if profile.symbols():
        return [s.base for s in profile.symbols()]
    if stream.symbols is None:
        raise ValueError(f"universe.top_n: {stream.source} does not say which coins it holds; name them in "
                         "universe.symbols")
    return list(stream.symbols[: profile.universe.top_n])


def start_mids(chunks, coins: list[str]) -> dict[str, float]:
    """Each coin's first Upbit KRW mid in the stream: the price per-coin inventory converts at."""
    mids: dict[str, float] = {}
    for cols in chunks:
        if "upbit" not in cols.venues:
            continue
        up = cols.venues.index("upbit")
        for coin in coins:
            if coin in mids or coin not in cols.symbols:
                continue
            hit = np.flatnonzero((cols.venue_code == up) & (cols.symbol_code == cols.symbols.index(coin))
                                 & ~np.isnan(cols.bid_px[:, 0]) & ~np.isnan(cols.ask_px[:, 0]))
            if len(hit):
                mids[coin] = float(cols.bid_px[hit[0], 0] + cols.ask_px[hit[0], 0]) / 2
        if len(mids) == len(coins):
            return mids
    missing = sorted(set(coins) - set(mids))
    raise ValueError(f"inventory_per_coin_krw: no Upbit book with both sides for {missing} in the data")


def starting_balances(profile, symbols: list[str], stream: Stream) -> dict:
    """The profile's inventory, plus inventory_per_coin_krw for every universe coin it does not name."""
    balances = {(venue, asset): amount for venue, assets in profile.inventory.items()
                for asset, amount in assets.items()}
    per_coin = profile.inventory_per_coin_krw
    if per_coin:
        if stream.columns is None:
            raise ValueError("inventory_per_coin_krw needs a books data source (start prices come from its books)")
        mids = start_mids(stream.columns(), symbols)
        for venue, krw in per_coin.items():
            for coin in symbols:
                balances.setdefault((venue, coin), round(krw / mids[coin], 8))
    return balances


def build_engine(profile, symbols: list[str], balances: dict | None = None, books: dict | None = None) -> Engine:
    params = profile.to_domain()
    if balances is None:
        balances = {(venue, asset): amount for venue, assets in profile.inventory.items()
                    for asset, amount in assets.items()}
    return Engine(symbols, params.strategy, params.risk, params.market, params.fx, balances, books=books)


def per_coin_note(profile) -> tuple[str, ...]:
    per_coin = profile.inventory_per_coin_krw
    if not per_coin:
        return ()
    held = ", ".join(f"{venue} {krw:,.0f} KRW" for venue, krw in per_coin.items())
    return (f"Starting coin inventory: every universe coin gets {held} worth, converted at its first Upbit "
            f"mid in the data (coins named in the inventory keep their own balance).",)


def sharding_note(processes: int) -> tuple[str, ...]:
    if processes == 1:
        return ()
    return (f"Replayed on {processes} processes: the per-coin scans (z-score samples, entry and exit screens) "
            "are split across coins; decisions, fills, balances and every risk guard run in one engine, so "
            "the results equal the 1-process run's whether or not the global guards bind.",)


def kpi_document(profile, engine: Engine, stream: Stream, run_id: str, started: float, latencies: list[float],
                 exit_code: int, out_dir: Path, data_window: tuple[int, int], processes: int = 1,
                 helpers: dict | None = None) -> dict:
    """The full KPI file: run facts, then the trading KPIs (SYSTEM.md's list, units in the names)."""
    pf = engine.portfolio
    fx = profile.fx
    usd_rate = fx.usd_krw_reference or (fx.fixed_usdt_krw or 0.0)
    if not usd_rate:
        try:
            usd_rate = engine.fx().mid
        except ValueError:
            usd_rate = 0.0
    ended = time.time()
    doc = {
        "run_id": run_id, "mode": "backtest", "profile": profile.name,
        "started_at": _iso(started), "ended_at": _iso(ended), "duration_s": round(ended - started, 3),
        "exit_code": exit_code, "universe": sorted(engine.strategies),
        "config_digest": profile.digest(), "data_source": stream.source, "synthetic_data": stream.synthetic,
        "notes": list(stream.notes) + list(per_coin_note(profile)) + list(sharding_note(processes)),
        "output_dir": str(out_dir), "processes": processes,
        "data_start_ms": data_window[0], "data_end_ms": data_window[1],
        "book_events": engine.trace.books, "evaluations": engine.trace.evaluations,
        "intents": engine.trace.intents, "usd_krw_used": usd_rate, "fx_source": fx.source,
        "events_per_s": round(engine.trace.books / max(ended - started, 1e-9), 1),
        "tick_to_decision_ms_avg": round(sum(latencies) / len(latencies), 4) if latencies else 0.0,
        "tick_to_decision_ms_p99": round(percentile(latencies, 99), 4),
        "alerts_sent": len(engine.trace.alerts), "stuck_legs": list(pf.stuck_legs),
        "snapshot_success_rate_pct": None,  # a backtest takes no snapshots (paper/live do)
    }
    doc.update(process_usage(started, helpers))
    doc.update(trading_kpis(pf.round_trips, engine.trace.orders, engine.trace.fills, engine.trace.equity,
                            pf.decisions, pf.risk.triggers, pf.failed_entries, len(pf.open_positions()),
                            usd_rate))
    return doc


def run_backtest(profile, *, out_root: Path | None = None, stream: Stream | None = None,
                 progress: bool = True, report: bool | None = None, fast: bool = True,
                 processes: int = 1) -> RunResult:
    """Replay, write outputs, return the KPIs. Exceptions in the data stop the run with a clear error.

    `fast` replays column chunks through backtest.fast_replay when the stream has them (same
    decisions, far fewer Books built); False forces the plain per-event path. `processes=2`
    scans half the coins in a second process (backtest.sharded); the results are the same.
    """
    if processes not in (1, 2):
        raise ValueError(f"processes {processes}: a backtest runs on 1 or 2 processes")
    if processes == 2 and not fast:
        raise ValueError("processes=2 shards the fast replay; the per-event path runs on one process")
    started = time.time()
    run_id = f"{profile.name}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S%fZ')}"
    out_dir = (out_root or profile.outputs_dir()) / run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    stream = stream or from_profile(profile)
    if processes == 2 and stream.columns is None:
        raise ValueError(f"processes=2 needs a books data source; {stream.source} has no column chunks")
    symbols = universe(profile, stream)
    balances = starting_balances(profile, symbols, stream)
    bar = _progress(progress)
    if fast and stream.columns is not None:
        engine, latencies, first_ts, helpers = _replay_fast(profile, stream, symbols, balances, bar, run_id, started,
                                                            out_dir, processes)
    else:
        engine, latencies, first_ts = _replay_plain(profile, stream, symbols, balances, bar, run_id, started, out_dir)
        helpers = None
    if bar is not None:
        bar.finish()
    kpi = kpi_document(profile, engine, stream, run_id, started, latencies, 0, out_dir, (first_ts or 0, engine.now),
                       processes, helpers)
    write_json_atomic(out_dir / "kpi.json", kpi)
    pf = engine.portfolio
    write_trade_log(out_dir / "trades.jsonl", engine.trace.orders, engine.trace.fills, pf.round_trips, pf.decisions)
    if profile.outputs.report if report is None else report:
        from reporting.html_report import write_report
        write_report(out_dir / "report.html", kpi, pf.round_trips, engine.trace.equity, engine.trace.premium,
                     engine.trace.markers, list(stream.notes))
    return RunResult(run_id, out_dir, kpi, engine, stream)


def _replay_plain(profile, stream, symbols, balances, bar, run_id, started, out_dir):
    """One Book per event through Engine.on_book (candle streams, and the fast path's reference)."""
    engine = build_engine(profile, symbols, balances)
    wanted = set(engine.strategies) | {FX_SYMBOL}
    latencies: list[float] = []
    first_ts = None
    checkpoint_every = profile.outputs.kpi_checkpoint_s
    next_checkpoint = started + checkpoint_every
    n = 0
    perf = time.perf_counter_ns
    for book in stream.books:
        if book.symbol not in wanted:
            continue
        if first_ts is None:
            first_ts = book.ts_ms
        n += 1
        if n % LATENCY_SAMPLE_EVERY:
            engine.on_book(book)
        else:
            t0 = perf()
            engine.on_book(book)
            latencies.append((perf() - t0) / 1e6)
            if bar is not None:
                bar.advance(LATENCY_SAMPLE_EVERY)
            if time.time() >= next_checkpoint:
                write_json_atomic(out_dir / "kpi_checkpoint.json",
                                  kpi_document(profile, engine, stream, run_id, started, latencies, -1, out_dir,
                                               (first_ts, engine.now)))
                next_checkpoint += checkpoint_every
    engine.finish()
    return engine, latencies, first_ts


def _replay_fast(profile, stream, symbols, balances, bar, run_id, started, out_dir, processes):
    """Column chunks through FastReplay: the exact rules run only where they can change a decision."""
    engine = build_engine(profile, symbols, balances, books=LazyBooks())
    next_checkpoint = [started + profile.outputs.kpi_checkpoint_s]

    def after_chunk(rows: int) -> None:
        if bar is not None:
            bar.advance(rows)
        if time.time() >= next_checkpoint[0]:
            write_json_atomic(out_dir / "kpi_checkpoint.json",
                              kpi_document(profile, engine, stream, run_id, started, replay.latencies, -1,
                                           out_dir, (replay.first_ts or 0, engine.now), processes))
            next_checkpoint[0] += profile.outputs.kpi_checkpoint_s

    scans = ShardedScans(engine, split(symbols, WORKER_SHARE)) if processes == 2 else None
    replay = FastReplay(engine, after_chunk, scans)
    replay.run(stream.columns())
    return engine, replay.latencies, replay.first_ts, scans.worker_usage if scans is not None else None


class _Bar:
    """A rich progress bar counting book events (the stream's length is not known up front)."""

    def __init__(self):
        from reporting.terminal import progress
        self.p = progress()
        self.p.start()
        self.task = self.p.add_task("backtest: book events", total=None)

    def advance(self, n: int) -> None:
        self.p.advance(self.task, n)

    def finish(self) -> None:
        self.p.stop()


def _progress(enabled: bool) -> _Bar | None:
    return _Bar() if enabled else None
