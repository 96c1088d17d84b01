"""Run live mode: the paper actor graph (feeds, strategy shards) with a LiveCoordinator whose orders go to
the venues through ccxt.

Fail-closed, in this order: arm here first (nothing starts and no connection opens before every arming
condition holds), then the full preflight (preflight.json in the run directory; any failure stops the
start), then the feeds' universe, Ray and the actors. The coordinator arms and preflights again in its
own process before its venue clients connect (keys are loaded there, never sent through Ray).

`resume` (a run id) starts a crashed live run again: armed afresh like any live start, then its Redis
snapshot is read (live.resume: missing, another profile's or unreadable refuses, naming key and field),
the preflight expects what the snapshot knows, and the coordinator restores the desk and settles the
orders the crash left in doubt before it takes a new intent. Same run id and directory; the KPIs go on.

Stops after `duration_s` or when `stop` is set (SIGINT/SIGTERM with `handle_signals`); `kill` (SIGUSR1)
engages the kill switch (cancel every order, then flatten or freeze per policy) and stops. Writes a
KPI checkpoint every `outputs.kpi_checkpoint_s`, and at the end the KPI JSON (the paper fields, mode
"live", plus guard blocks by tier, venue stats, kill and reconcile reports) and the trade log.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import ray
from rich.console import Console

from backtest.outputs import write_json_atomic
from backtest.runner import kpi_document
from live.arming import CONDITIONS, ArmingResult, require_armed
from live.cli import KnownState, kill_table, live_preflight, resolve_keys, traded_venues, write_preflight
from live.exchanges import endpoints_of
from live.killswitch import KillReport
from live.lease import LeaseHeld, RunLease
from live.options import LiveOptions, arming_env
from live.redact import Redactor, install_log_redaction
from live.resume import ResumeRefused, read_run_snapshot
from live.session import PreflightFailed, arming_inputs
from paper import graph
from paper.run import (FEED_VENUES, REPO, PaperSource, Venues, final_fields, is_local, load_universe, on_signals,
                       shard_latencies, start_ray, wait, write_results)
from paper.universe import Universe
from sim import ccxt_overrides

log = logging.getLogger("live.run")


def arm(profile: Any, env: Mapping[str, str], now_ms: int | None = None) -> ArmingResult:
    """Every arming condition, checked before anything else; raises LiveRefused naming each that failed."""
    config, caps = arming_inputs(profile)
    keys, _, problem = resolve_keys(profile, env)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    result = require_armed(env, config, caps, traded_venues(profile), keys, now, problem)
    install_log_redaction(Redactor.from_keys(keys))   # from here on no log line carries a key
    return result


def feed_configs(profile: Any) -> dict[str, dict]:
    """Public market data per feed venue: the profile's endpoints, or ccxt's own URLs (no keys)."""
    endpoints = endpoints_of(profile)
    venues = FEED_VENUES[profile.strategy.hedge]
    return {v: ccxt_overrides(endpoints, v) if endpoints else {} for v in venues}


def live_universe(profile: Any, configs: dict[str, dict]) -> Universe:
    """The profile's explicit coins, each listed on both venues as the same asset; refuses otherwise."""
    coins = [s.base for s in (profile.symbols() or ())]
    if not coins:
        raise ValueError(f"run_live: profile {profile.name}: live trades an explicit universe.symbols list")
    universe = load_universe(profile, Venues(configs, coins, {}, PaperSource("live", False, ())))
    if list(universe.coins) != coins:
        raise ValueError(f"run_live: profile {profile.name}: not every coin is tradable on both venues: "
                         f"{'; '.join(universe.notes()) or sorted(set(coins) - set(universe.coins))}")
    return universe


def live_fields(desk) -> dict:
    """What only live has, for the KPI JSON: blocks by tier and guard, venue counters, kills, reconciles."""
    pf = desk.portfolio
    blocks: dict[str, dict[str, int]] = {}
    for d in pf.decisions:
        if not d.allowed:
            tier = blocks.setdefault(d.tier, {})
            tier[d.guard] = tier.get(d.guard, 0) + 1
    stats = desk.venue_stats()
    reports = desk.reconcile_reports
    last = reports[-1] if reports else None
    return {"guard_blocks_by_tier": blocks, "venue_stats": stats,
            "rate_limited_429": sum(s["rate_limited"] for s in stats.values()),
            "venue_retries": sum(s["retries"] for s in stats.values()),
            "recovered_sends": sum(s["recovered"] for s in stats.values()),
            "orders_sent": len(desk.sent), "unresolved_orders": sorted(desk.unresolved),
            "degraded_venues": sorted(pf.risk.degraded_venues), "frozen": pf.risk.frozen or None,
            "kill_reports": [r.to_dict() for r in desk.kill_reports],
            "reconciles": len(reports), "reconciles_not_ok": sum(not r.ok for r in reports),
            "last_reconcile": {"ok": last.ok, **asdict(last)} if last is not None else None,
            "live_alerts": dict(sorted(Counter(f"{a.severity} {a.kind}" for a in desk.live_alerts).items())),
            "resumed": desk.resumed}


def run_live(profile: Any, duration_s: float, *, out_root: Path | None = None, stop: threading.Event | None = None,
             handle_signals: bool = False, env: Mapping[str, str] | None = None, kill: threading.Event | None = None,
             options: LiveOptions | None = None, shard_size: int | None = None, flush_ms: float | None = None,
             live_table: bool = False, resume: str | None = None) -> dict:
    """Trade live until `duration_s`, `stop` or `kill`; return the KPI document (mode "live").

    `resume`: the id of a crashed live run of this profile to continue (see the module's doc).

    Raises LiveRefused (arming), LeaseHeld (another process trades this run id: live/lease.py),
    ResumeRefused (the snapshot) or PreflightFailed before Ray starts or any order can be placed.
    `env` defaults to os.environ; the coordinator reads keys from its own environment (Ray workers
    inherit this process's when run_live starts Ray) or from the secrets file the profile or
    ARB_SECRETS_FILE names.
    """
    if profile.mode != "live":
        raise ValueError(f"run_live: profile {profile.name} has mode {profile.mode!r}, expected 'live'")
    env = os.environ if env is None else env
    options = options or LiveOptions.from_profile(profile.live)
    shard_size = shard_size or profile.actors.symbols_per_strategy
    flush_ms = flush_ms or profile.actors.flush_ms
    started = life_started = time.time()
    arming = arm(profile, env)                   # a resume is a live start: armed afresh, first
    run_id = resume or f"{profile.name}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S%fZ')}"
    with ExitStack() as stack:
        lease = RunLease(profile.storage.redis_url, run_id, options.lease_ttl_s)
        lease.acquire()                          # LeaseHeld: another process trades this run
        stack.callback(lease.release)
        known, resumes = KnownState(), 0
        if resume:
            snap = read_run_snapshot(profile.storage.redis_url, resume, profile)
            known, resumes, started = snap.known_state(), snap.resumes + 1, snap.started_ms / 1000
        out_dir = (out_root or profile.outputs_dir()) / run_id
        out_dir.mkdir(parents=True, exist_ok=True)
        preflight = asyncio.run(live_preflight(profile, env, known, options.max_skew_ms, 20.0, options.rate_limit))
        write_preflight(out_dir, profile.name, preflight)
        if not preflight.ok:
            raise PreflightFailed(preflight)
        configs = feed_configs(profile)
        universe = live_universe(profile, configs)
        local = is_local(profile)
        where = "the loopback endpoints (local exchange simulator)" if local else "Upbit and Binance"
        source = PaperSource(f"live orders on {where}", local,
                             ("LIVE orders on the local exchange simulator: not a market result",) if local else ())
        stop, kill = stop or threading.Event(), kill or threading.Event()
        params = profile.to_domain()
        dashboard = start_ray(stack)
        if handle_signals:
            on_signals({signal.SIGINT: lambda *_: stop.set(), signal.SIGTERM: lambda *_: stop.set(),
                        signal.SIGUSR1: lambda *_: kill.set()}, stack)
        actors = _start_actors(profile, params, universe, configs, run_id, arming_env(profile, env), options,
                               shard_size, flush_ms, bool(resume), int(started * 1000))
        try:
            write_json_atomic(out_dir / "running.json", {
                "run_id": run_id, "mode": "live", "coins": list(universe.coins), "actors": sorted(actors.handles()),
                "ray_dashboard": f"http://{dashboard}" if dashboard else None, "metrics_url": actors.metrics_url,
                "armed": arming.armed, "preflight_ok": preflight.ok, "started_epoch": started,
                "resumes": resumes})

            def kpi_now(desk, latencies: list[float], extra: dict) -> dict:
                kpi = kpi_document(profile, desk, source, run_id, started, latencies, 0, out_dir,
                                   (int(started * 1000), desk.now))
                kpi.update({"mode": "live", "arming": {"armed": arming.armed, "conditions": list(CONDITIONS)},
                            "preflight": {"ok": preflight.ok, "checks": len(preflight.results),
                                          "file": "preflight.json"}, **live_fields(desk), **extra})
                return kpi

            def serve_kill() -> None:
                if kill.is_set():
                    _engage(actors, out_dir, "operator signal (SIGUSR1)", options.kill_policy)
                    stop.set()
                if lease.lost.is_set():          # another process may be trading this run: stop, hold positions
                    log.error("live run %s: its lease is lost; stopping (positions held, see runbooks)", run_id)
                    stop.set()

            trading_from = time.time()
            wait(profile, actors, stop, trading_from, duration_s, live_table,
                 lambda desk: write_json_atomic(out_dir / "kpi.json", kpi_now(desk, [], {"checkpoint": True,
                                                                                       "exit_code": None})),
                 serve_kill)
        finally:
            feed_stats, shard_stats, desk = graph.stop(actors)
        kpi = kpi_now(desk, shard_latencies(shard_stats),
                      final_fields(shard_stats, feed_stats, desk, life_started, trading_from))
        write_results(out_dir, kpi, desk)      # the lease is held until the run's results are written
        return kpi


def _start_actors(profile, params, universe: Universe, configs: dict, run_id: str, arming: dict,
                  options: LiveOptions, shard_size: int, flush_ms: float, resume: bool,
                  started_ms: int) -> graph.ActorGraph:
    """graph.start with the LiveCoordinator; a refused start leaves none of the run's actors behind."""
    from actors.live_coordinator import LiveCoordinator, LiveStartRefused
    from alerts.config import from_profile as alerts_from_profile
    try:
        return graph.start(params, universe, {}, configs, shard_size=shard_size, flush_ms=flush_ms, tag=run_id,
                           alerts_config=alerts_from_profile(profile.alerts), alerts_dir=REPO,
                           metrics_port=profile.metrics.port, coordinator_cls=LiveCoordinator,
                           coordinator_kwargs={"profile": profile, "run_id": run_id, "arming": arming,
                                               "options": options, "snapshots": profile.storage.redis_url,
                                               "resume": resume, "started_ms": started_ms})
    except BaseException as exc:
        for name in ray.util.list_named_actors():
            if name.endswith(f"@{run_id}"):
                ray.kill(ray.get_actor(name))
        cause = getattr(exc, "cause", None)
        if isinstance(cause, LiveStartRefused):
            raise LiveStartRefused(str(cause)) from None
        raise


def _engage(actors: graph.ActorGraph, out_dir: Path, reason: str, policy: str) -> None:
    """The kill switch through the coordinator; kill.json written and its table printed."""
    doc = ray.get(actors.coordinator.kill.remote(reason, policy))
    (out_dir / "kill.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    report = KillReport(**{k: tuple(v) if isinstance(v, list) else v for k, v in doc.items() if k != "ok"})
    Console(stderr=True).print(kill_table(report))


def run_command(profile: Any, duration_s: float = float("inf"), out_root: Path | None = None,
                policy: str | None = None, console: Console | None = None, live_table: bool = False,
                resume: str | None = None) -> int:
    """The operator's live start (`resume`: of a crashed run): run until the duration, SIGINT/SIGTERM (stop)
    or SIGUSR1 (kill switch).

    Exit codes: 0 the run ended and wrote its KPIs, 1 live refused to start (arming, the snapshot of a
    resumed run, its lease held by another process, preflight, or the coordinator's own checks: each reason
    printed), 2 not a live profile.
    """
    from actors.live_coordinator import LiveStartRefused
    from live.arming import LiveRefused
    console = console or Console(stderr=True)
    if profile.mode != "live":
        console.print(f"[red]live[/]: profile {profile.name} has mode {profile.mode!r}; not a live profile")
        return 2
    try:
        kpi = run_live(profile, duration_s, out_root=out_root, handle_signals=True,
                       options=LiveOptions.from_profile(profile.live, kill_policy=policy), live_table=live_table,
                       resume=resume)
    except (LiveRefused, PreflightFailed, LiveStartRefused, ResumeRefused, LeaseHeld) as exc:
        console.print(f"[red]live start refused[/]: {exc}")
        return 1
    kills = kpi["kill_reports"]
    console.print(f"[bold]{profile.name}[/] (live): {kpi['orders_sent']} orders, {kpi['round_trips']} round trips, "
                  f"PnL {kpi['pnl_krw']:,.0f} KRW, last reconcile "
                  f"{'ok' if (kpi['last_reconcile'] or {}).get('ok') else 'NOT OK'}"
                  f"{f', kill switch engaged {len(kills)}x' if kills else ''}; outputs: {kpi['output_dir']}")
    if kpi["resumed"]:
        r = kpi["resumed"]
        console.print(f"resumed from snapshot version {r['snapshot_version']}: {len(r['open_positions'])} open "
                      f"position(s), {r['round_trips']} round trips before the crash, orders settled by client id: "
                      f"{r.get('settled_orders', 'none (not yet)')}")
    return 0
