"""Pipeline latency: the real actor pipeline on a SYNTHETIC Top100 at about 2,000 book updates/s.

    python -m bench.pipeline_latency [--coins 100] [--rate 2000] [--seconds 30] [--warmup 15]
                                     [--flush-ms 2] [--shard-size 50] [--sim-nice 10] [--telemetry]

The simulator (sim/, in a child process, on 127.0.0.1) replays the synthetic generator's 1-second
books at speed rate / books-per-step, paced from the moment the feeds are subscribed; an
ExchangeFeedActor per venue reads them through ccxt.pro and fans coalesced batches out to the
SymbolStrategyActor shards and the PortfolioRiskCoordinator. Prints p50/p99 of feed receive ->
strategy decision and -> coordinator decision, CPU as % of the machine's cores and peak memory of
this process and all its descendants (Ray's own processes and workers included; the simulator
reported apart, it stands in for the exchanges), read from /proc, and the CPU per unit of work
(per book, per batch received) that stays meaningful when other load on the machine skews latencies.
The strategy runs a zero-fee, low-threshold variant so intents flow and the coordinator hop has
samples; its PnL means nothing.

The graph is paper.graph.start's, so the actors and their wiring are the real ones. The coordinator
is a thin subclass (TimedCoordinator) that keeps every hop sample (the real one reports them only as
histogram buckets through Telemetry) and the lag of each book behind the simulator's schedule. With
--telemetry the graph also gets its MetricsActor, so every actor reports through actors.telemetry
as in a run with metrics on: compare with and without to see what that costs.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import ray

from actors.book_channel import serves_books
from actors.coordinator import PortfolioRiskCoordinator
from alerts.config import from_profile
from config.loader import load_profile
from domain.kpi import percentile
from domain.symbols import FX_SYMBOL
from marketdata.synthetic import SyntheticConfig, SyntheticMarket
from metrics.registry import HOPS
from metrics.server import scrape
from paper import graph
from paper.run import FEED_VENUES, PaperSource, Venues, load_universe, starting_balances
from sim import SimThread, ccxt_overrides

TARGETS = {"p50_ms": 5.0, "p99_ms": 20.0, "cpu_pct": 70.0, "memory_gb": 8.0}
CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


@ray.remote(num_cpus=0)
@serves_books
class TimedCoordinator(PortfolioRiskCoordinator.__ray_actor_class__):
    """The real coordinator, keeping raw samples: per intent batch (feed receive -> decision, strategy
    decision -> decision), and per book batch how late its newest book is behind the simulator's
    schedule (WebSocket, ccxt parsing, coalescing and the Ray hop: a growing figure is a backlog)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hops: list[tuple[float, float]] = []
        self.due_ms: list[float] = []
        self.sim_clock: tuple[float, int, float] | None = None
        self.decisions_at = 0

    def set_clock(self, sim_clock: tuple[float, int, float]) -> None:
        """(wall time the paced replay started, ts of its first book, speed): when each book was due."""
        self.sim_clock = sim_clock

    def on_books(self, books, received_at: float = 0.0) -> None:
        super().on_books(books, received_at)
        if self.sim_clock is not None and books:
            wall0, ts0, speed = self.sim_clock
            self.due_ms.append((time.time() - wall0 - (max(b.ts_ms for b in books) - ts0) / 1000 / speed) * 1000)

    def submit(self, intents, received_at: float = 0.0, decided_at: float = 0.0) -> None:
        super().submit(intents, received_at, decided_at)
        if decided_at:
            now = time.time()
            self.hops.append((now - received_at, now - decided_at))

    def reset(self) -> None:
        self.hops.clear()
        self.due_ms.clear()
        self.decisions_at = len(self.desk.portfolio.decisions)

    def bench_stats(self) -> dict:
        guards: dict[str, int] = {}
        for d in self.desk.portfolio.decisions[self.decisions_at:]:
            guards[d.guard] = guards.get(d.guard, 0) + 1
        return {"hops": list(self.hops), "due_ms": list(self.due_ms), "intents": self.desk.trace.intents,
                "guards": guards, "round_trips": len(self.desk.portfolio.round_trips)}


# ---- the process tree, from /proc ----

def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:           # the process ended between listing and reading
        return None


def _stat(path: str) -> tuple[int, int] | None:
    """(ppid, utime + stime ticks) of /proc/<pid>[/task/<tid>]/stat."""
    text = _read(path)
    if text is None:
        return None
    fields = text[text.rindex(")") + 2:].split()      # the name in parentheses may hold spaces
    return int(fields[1]), int(fields[11]) + int(fields[12])


def _kb(path: str, key: str) -> int:
    text = _read(path) or ""
    for line in text.splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def _label(pid: int) -> str:
    """ray::<Actor> for workers, else the program or script name."""
    argv = (_read(f"/proc/{pid}/cmdline") or "").split("\0")
    if argv[0].startswith("ray::"):        # ray::Actor, or ray::Actor.method while a call runs
        return argv[0].split()[0].split(".")[0]
    script = next((a for a in argv[1:] if a.endswith(".py")), None)
    return os.path.basename(script or argv[0]) or str(pid)


def process_tree(root: int) -> list[int]:
    """`root` and every descendant (Ray starts gcs_server and the raylet as children; workers under the raylet)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := _stat(f"/proc/{name}/stat")) is not None:
            children.setdefault(st[0], []).append(int(name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def machine_busy_ticks() -> int:
    """All CPUs' non-idle ticks since boot (/proc/stat), to show how much others used meanwhile."""
    values = [int(x) for x in (_read("/proc/stat") or "").splitlines()[0].split()[1:]]
    return sum(values) - values[3] - values[4]


@dataclass
class TreeSampler:
    """Samples the tree every `every_s`: peak RSS/PSS sums; CPU ticks per process at mark() and stop()."""

    root: int
    every_s: float = 1.0
    peak_rss_kb: int = 0          # without the `apart` processes (the simulator)
    peak_pss_kb: int = 0
    peak_apart_rss_kb: int = 0
    apart: set[int] = field(default_factory=set)
    marks: list[tuple[float, dict[int, int], int]] = field(default_factory=list)
    labels: dict[int, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> "TreeSampler":
        threading.Thread(target=self._run, name="tree-sampler", daemon=True).start()
        return self

    def ticks(self) -> dict[int, int]:
        out = {}
        for pid in process_tree(self.root):
            if (st := _stat(f"/proc/{pid}/stat")) is not None:
                out[pid] = st[1]
                self.labels.setdefault(pid, _label(pid))
        return out

    def mark(self) -> None:
        self.marks.append((time.monotonic(), self.ticks(), machine_busy_ticks()))

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            pids = [p for p in process_tree(self.root) if p not in self.apart]
            self.peak_rss_kb = max(self.peak_rss_kb, sum(_kb(f"/proc/{p}/status", "VmRSS:") for p in pids))
            self.peak_pss_kb = max(self.peak_pss_kb, sum(_kb(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids))
            self.peak_apart_rss_kb = max(self.peak_apart_rss_kb,
                                         sum(_kb(f"/proc/{p}/status", "VmRSS:") for p in self.apart))

    def cpu(self) -> tuple[float, dict[str, float], float]:
        """Between the first two marks: tree CPU %, % per process label, and everyone else's %."""
        (t0, a, busy0), (t1, b, busy1) = self.marks[:2]
        capacity = (t1 - t0) * CLK_TCK * CORES / 100       # ticks that make 1% of all cores
        per: dict[str, float] = {}
        for pid, ticks in b.items():
            per[self.labels[pid]] = per.get(self.labels[pid], 0.0) + (ticks - a.get(pid, 0)) / capacity
        tree = sum(per.values())
        return tree, per, (busy1 - busy0) / capacity - tree


# ---- the run ----

def trading_profile(coins: int):
    """paper-top50-local for `coins` coins, tuned so intents keep flowing: zero fees, a 2 bps absolute
    entry, positions closed within 20 s of market time, 10 s cooldown.

    Guards opened wide (positions, route rate, loss streak, daily loss): once a guard blocks a coin,
    its strategy proposes the entry again on every batch (there is no back-off after `rejected`),
    a storm of intents that measures that gap, not the pipeline.
    """
    profile = load_profile("paper-top50-local")
    venues = profile.venues
    return profile.model_copy(update={
        "universe": profile.universe.model_copy(update={"top_n": coins}),
        "risk": profile.risk.model_copy(update={"max_open_positions": coins, "max_route_trades_per_hour": 3600,
                                                "max_consecutive_losses": 1000, "daily_loss_limit_krw": 1e12,
                                                "max_venue_exposure_krw": 1e12, "max_total_exposure_krw": 1e12}),
        "venues": venues.model_copy(update={v: getattr(venues, v).model_copy(update={"taker_fee": 0.0})
                                             for v in ("upbit", "binance", "binance_usdm")}),
        "strategy": profile.strategy.model_copy(update={"mode": "absolute", "entry_edge_bps": 2.0,
                                                        "take_profit_bps": 1.0, "max_hold_ms": 20_000,
                                                        "cooldown_ms": 10_000})})


def _simulator(conn, coins: int, days: float, seed: int, speed: float, levels: int, nice: int) -> None:
    """Child process: the simulator on 127.0.0.1, first step published (REST snapshots exist), paced on "go".

    Its own process, so the exchange it stands in for neither competes for the driver's GIL nor
    hides in the figures of the system under test. `nice` lowers its CPU priority: the exchanges are
    not on the trader's machine, so their encoding should not preempt the pipeline being measured
    (the published rate is printed, so a starved simulator shows).
    """
    os.nice(nice)
    market = SyntheticMarket(SyntheticConfig(coins=coins, days=days, seed=seed, levels=levels))
    sim = SimThread(market.books(), markets={"upbit": (*market.coins, FX_SYMBOL), "binance": tuple(market.coins),
                                             "binance_usdm": ()})
    urls = sim.start()
    sim.advance_to(market.config.start_ms)
    first = sim.server.replayer._peek()     # the book the paced replay starts from (Replayer.run's start_ts)
    conn.send({"urls": urls, "coins": list(market.coins), "price_usdt": [float(p) for p in market.price_usdt],
               "krw_per_usdt": market.cal.ratio.mean, "source": market.source, "next_ts_ms": first.ts_ms})
    replay = None
    while (cmd := conn.recv()) != "stop":
        if cmd == "go":
            replay = asyncio.run_coroutine_threadsafe(sim.server.replayer.run(speed), sim.loop)
            conn.send(time.time())
        elif cmd == "published":
            conn.send(sim.server.replayer.published)
    if replay is not None:
        replay.cancel()
    sim.stop()
    conn.send(None)


class SimProcess:
    """Drives _simulator over a pipe."""

    def __init__(self, coins: int, days: float, seed: int, speed: float, levels: int, nice: int):
        ctx = multiprocessing.get_context("spawn")      # no fork of a process that holds threads
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_simulator, args=(child, coins, days, seed, speed, levels, nice), daemon=True)
        self.process.start()
        self.info = self.conn.recv()

    def ask(self, cmd: str):
        self.conn.send(cmd)
        return self.conn.recv()

    def stop(self) -> None:
        if self.process.is_alive():
            self.ask("stop")
        self.process.join(10)


def run(args: argparse.Namespace) -> dict:
    profile = trading_profile(args.coins)
    params = profile.to_domain()
    books_per_step = 2 * args.coins + 1          # both venues per coin, plus the KRW-USDT book
    speed = args.rate / books_per_step           # the generator's cadence is 1 s
    sampler = TreeSampler(os.getpid()).start()
    with ExitStack() as stack:
        sim = SimProcess(args.coins, ((args.warmup + args.seconds + 60) * speed + 60) / 86_400, 7, speed, args.levels,
                         args.sim_nice)
        stack.callback(sim.stop)
        sampler.labels[sim.process.pid] = "simulator (the exchanges)"
        sampler.apart.add(sim.process.pid)
        info = sim.info
        coins = info["coins"]
        venues = Venues({v: ccxt_overrides(info["urls"], v) for v in FEED_VENUES["inventory"]}, coins,
                        {c: px * info["krw_per_usdt"] for c, px in zip(coins, info["price_usdt"])},
                        PaperSource(info["source"], True, ()))
        universe = load_universe(profile, venues)
        balances = starting_balances(profile, universe, venues.price_krw, params.strategy.order_notional_krw)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        stack.callback(ray.shutdown)
        actors = graph.start(params, universe, balances, venues.ccxt_configs, shard_size=args.shard_size,
                             flush_ms=args.flush_ms, synthetic=True, tag="bench", coordinator_cls=TimedCoordinator,
                             metrics_port=free_port() if args.telemetry else 0,
                             alerts_config=from_profile(profile.alerts) if args.telemetry else None,
                             alerts_dir=Path(stack.enter_context(tempfile.TemporaryDirectory())))
        stack.callback(graph.stop, actors)
        coord, strategies, feeds = actors.coordinator, [h for h, _ in actors.strategies], actors.feeds
        sim_clock = (sim.ask("go"), info["next_ts_ms"], speed)    # paced from now, not while Ray was starting
        ray.get(coord.set_clock.remote(sim_clock))
        time.sleep(args.warmup)
        ray.get(coord.reset.remote())
        seen0 = [len(x["latency_ms"]) for x in ray.get([h.stats.remote() for h in strategies])]
        feed0 = dict(zip(feeds, ray.get([f.stats.remote() for f in feeds.values()])))
        published0, load0 = sim.ask("published"), os.getloadavg()[0]
        sampler.mark()
        time.sleep(args.seconds)
        sampler.mark()
        feed1 = dict(zip(feeds, ray.get([f.stats.remote() for f in feeds.values()])))
        published = sim.ask("published") - published0
        strat = ray.get([h.stats.remote() for h in strategies])
        coord_stats = ray.get(coord.bench_stats.remote())
        scraped = None
        if actors.metrics_url is not None:
            time.sleep(0.5)                            # the actors' last telemetry flush
            scraped = scrape(actors.metrics_url)
        sampler.stop()
    tree_cpu, per_label, others = sampler.cpu()
    sim_cpu = per_label.get("simulator (the exchanges)", 0.0)
    to_strategy = [x for s, n0 in zip(strat, seen0) for x in s["latency_ms"][n0:]]
    to_coord = [h[0] * 1000 for h in coord_stats["hops"]]
    strat_to_coord = [h[1] * 1000 for h in coord_stats["hops"]]
    seconds = args.seconds
    delta = {v: {k: feed1[v][k] - feed0[v][k] for k in feed1[v]} for v in feeds}
    return {
        "coins": len(universe.coins), "excluded": universe.excluded, "speed": round(speed, 3), "levels": args.levels,
        "sim_nice": args.sim_nice,
        "flush_ms": args.flush_ms, "shard_size": args.shard_size, "strategy_actors": len(strategies),
        "telemetry": args.telemetry, "window_s": seconds, "load_avg_1m_at_start": load0,
        "sim_published_per_s": round(published / seconds),
        "feed_updates_per_s": {v: round(d["updates"] / seconds) for v, d in delta.items()},
        "feed_batches_per_s": {v: round(d["batches"] / seconds, 1) for v, d in delta.items()},
        "batches_sent_per_s": round(sum(d["sends"] for d in delta.values()) / seconds),
        "sink_channels_lost": {v: d.get("sink_lost", 0) for v, d in delta.items()},
        "feed_deferred_per_s": {v: round(d.get("deferred", 0) / seconds, 1) for v, d in delta.items()},
        "feed_watch_calls": {v: d.get("watches", 0) for v, d in delta.items()},
        "feed_problems": {v: {k: d[k] for k in ("resyncs", "reconnects", "malformed")} for v, d in delta.items()},
        "feed_to_strategy_ms": _summary(to_strategy),
        "feed_to_coordinator_ms": _summary(to_coord),
        "strategy_to_coordinator_ms": _summary(strat_to_coord),
        "sim_due_to_coordinator_ms": _summary(coord_stats["due_ms"]),
        "intents_in_window": len(to_coord), "round_trips_total": coord_stats["round_trips"],
        "guard_decisions_in_window": coord_stats["guards"],
        "intents_sent_in_run": sum(x["intents"] for x in strat), "intents_received_in_run": coord_stats["intents"],
        "cpu_pct_of_all_cores": round(tree_cpu - sim_cpu, 1), "cpu_pct_simulator": round(sim_cpu, 1),
        "cores": CORES,
        "cpu_pct_by_process": {k: round(v, 1) for k, v in sorted(per_label.items(), key=lambda kv: -kv[1]) if v >= 0.1},
        "cpu_pct_others_on_machine": round(others, 1),
        "cpu_us_per_unit": _unit_costs(per_label, published / seconds, len(to_strategy) / seconds,
                                       len(coord_stats["due_ms"]) / seconds),
        "peak_rss_mb": round(sampler.peak_rss_kb / 1024), "peak_pss_mb": round(sampler.peak_pss_kb / 1024),
        "simulator_peak_rss_mb": round(sampler.peak_apart_rss_kb / 1024),
        "telemetry_hop_counts": None if scraped is None else {
            hop: scraped.get(("arb_hop_latency_seconds_count", (("hop", hop),))) for hop in HOPS},
    }


def free_port() -> int:
    """A loopback port nothing listens on (the MetricsActor binds it right after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unit_costs(per_label: dict[str, float], published_per_s: float, strategy_batches_per_s: float,
                coordinator_batches_per_s: float) -> dict:
    """CPU microseconds per unit of work: what stays true when other load changes the latencies.

    Per book published (feeds: ccxt parsing and conversion; simulator: encoding and sending, valid
    while the feeds keep up), per batch of books received (strategies, coordinator).
    """
    def us(label: str, per_s: float) -> float | None:
        share = per_label.get(label, 0.0) / 100 * CORES
        return round(share / per_s * 1e6) if per_s else None
    return {"feed_per_book": us("ray::ExchangeFeedActor", published_per_s),
            "simulator_per_book": us("simulator (the exchanges)", published_per_s),
            "strategy_per_batch": us("ray::SymbolStrategyActor", strategy_batches_per_s),
            "coordinator_per_batch": us("ray::TimedCoordinator", coordinator_batches_per_s)}


def _summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    return {"n": len(values), "p50": round(percentile(values, 50), 2), "p99": round(percentile(values, 99), 2),
            "max": round(max(values), 2)}


def report(r: dict) -> None:
    t = TARGETS
    print(f"SYNTHETIC Top{r['coins']} ({r['levels']} levels a side) on the local simulator (loopback), speed {r['speed']}: "
          f"{r['sim_published_per_s']:,} book updates/s published (simulator at nice {r['sim_nice']}); flush_ms {r['flush_ms']}, "
          f"{r['strategy_actors']} strategy actors of {r['shard_size']} symbols, telemetry {'on' if r['telemetry'] else 'off'}")
    print(f"window {r['window_s']} s after warm-up; 1-min load average at start {r['load_avg_1m_at_start']:.2f} "
          f"(others' processes used {r['cpu_pct_others_on_machine']}% of the {r['cores']} cores meanwhile)")
    print(f"feeds: updates/s {r['feed_updates_per_s']}, batches/s {r['feed_batches_per_s']}, "
          f"batches sent/s over the book channels {r['batches_sent_per_s']:,}, problems {r['feed_problems']}, "
          f"sink channels lost {r['sink_channels_lost']}")
    print(f"  flushes held back per second while the sink was busy {r['feed_deferred_per_s']}; "
          f"watch_order_book calls in the window {r['feed_watch_calls']} (the rest of the updates waited on "
          f"ccxt's future directly)")
    for key, name in (("feed_to_strategy_ms", "feed receive -> strategy decision (oldest book of each batch)"),
                      ("feed_to_coordinator_ms", "feed receive -> coordinator decision (per intent batch)"),
                      ("strategy_to_coordinator_ms", "strategy decision -> coordinator decision"),
                      ("sim_due_to_coordinator_ms", "sim publish due -> coordinator has the book (newest of each batch)")):
        s = r[key]
        flag = ""
        if key in ("feed_to_strategy_ms", "feed_to_coordinator_ms"):
            verdict = "no samples" if not s["n"] else \
                "met" if s["p50"] < t["p50_ms"] and s["p99"] < t["p99_ms"] else "MISSED"
            flag = f"   [targets p50 < {t['p50_ms']:g}, p99 < {t['p99_ms']:g}: {verdict}]"
        print(f"  {name}: p50 {s['p50']} ms, p99 {s['p99']} ms, max {s['max']} ms, n={s['n']}{flag}")
    cpu = r["cpu_pct_of_all_cores"]
    print(f"CPU, process tree without the simulator (driver + every Ray process): {cpu}% of {r['cores']} cores "
          f"[target < {t['cpu_pct']:g}%: {'met' if cpu < t['cpu_pct'] else 'MISSED'}]; "
          f"the simulator used {r['cpu_pct_simulator']}% more")
    print("  by process: " + ", ".join(f"{k} {v}%" for k, v in r["cpu_pct_by_process"].items()))
    print(f"  CPU per unit of work (us): {r['cpu_us_per_unit']}")
    gb = r["peak_rss_mb"] / 1024
    print(f"memory, peak sum over the tree without the simulator: RSS {r['peak_rss_mb']:,} MB (PSS "
          f"{r['peak_pss_mb']:,} MB, shared pages counted once) [target < {t['memory_gb']:g} GB: "
          f"{'met' if gb < t['memory_gb'] else 'MISSED'}]; the simulator {r['simulator_peak_rss_mb']:,} MB RSS")
    print(f"intents in the run: sent {r['intents_sent_in_run']}, decided {r['intents_received_in_run']}; "
          f"intent batches decided in the window {r['intents_in_window']} (guards: {r['guard_decisions_in_window']}), "
          f"round trips in the run {r['round_trips_total']} "
          f"(SYNTHETIC, zero-fee variant: not a market result)")
    if r["telemetry_hop_counts"] is not None:
        print(f"telemetry: hop samples scraped from the MetricsActor {r['telemetry_hop_counts']}")
    print(json.dumps(r))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coins", type=int, default=100)
    ap.add_argument("--rate", type=float, default=2000.0, help="book updates per second offered, all venues")
    ap.add_argument("--seconds", type=float, default=30.0, help="measured window")
    ap.add_argument("--warmup", type=float, default=15.0, help="subscriptions, REST snapshots, first batches")
    ap.add_argument("--flush-ms", type=float, default=2, help="the feeds' least time between two flushes")
    ap.add_argument("--shard-size", type=int, default=50, help="symbols per strategy actor (50: 2 actors for Top100, "
                    "one per core; the profile's actors.symbols_per_strategy makes 2 for Top50)")
    ap.add_argument("--levels", type=int, default=20, help="book levels per side the generator makes (<= 20); "
                    "every level changes every step, so a Binance diff carries all of them")
    ap.add_argument("--sim-nice", type=int, default=10, help="the simulator's niceness (0: same CPU priority "
                    "as the pipeline; the exchanges are not on the trader's machine)")
    ap.add_argument("--telemetry", action="store_true",
                    help="run with a MetricsActor and an AlertDispatcherActor, every actor reporting through Telemetry")
    args = ap.parse_args(argv)
    if not 1 <= args.coins <= 100 or args.rate <= 0 or args.seconds <= 0 or args.flush_ms <= 0 \
            or not 1 <= args.levels <= 20:
        ap.error("need 1 <= --coins <= 100, --rate > 0, --seconds > 0, --flush-ms > 0, 1 <= --levels <= 20")
    if ray.is_initialized():
        ap.error("run this as its own process: it measures the Ray processes it starts")
    report(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
