"""The actor graph of a paper (later live) run: feeds -> strategy shards -> coordinator, built and stopped.

Each feed sends the coordinator every book (it fills orders against them) and each strategy shard
the books of its own symbols plus the USDT/KRW book.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from domain.symbols import FX_SYMBOL
from actors.persistence import Persist
from paper import recording
from paper.placement import Placement
from paper.universe import Universe


# How the supervisor watches each kind: a feed trades again once subscribed; a restart storm
# freezes the coordinator's desk (RiskState.frozen, which every entry check honours).
WATCH = {"feed": {"ready_method": "ready"}, "coordinator": {"freeze_method": "freeze"}}


def shards(symbols: list[str], size: int) -> list[list[str]]:
    if size < 1:
        raise ValueError(f"paper: shard size {size} must be >= 1")
    return [symbols[i:i + size] for i in range(0, len(symbols), size)]


@dataclass
class ActorGraph:
    coordinator: Any
    strategies: list[tuple[Any, list[str]]]     # (actor, its symbols)
    feeds: dict[str, Any]                       # venue -> actor
    alerts: Any = None                          # AlertDispatcherActor
    metrics: Any = None                         # MetricsActor (Prometheus endpoint)
    metrics_url: str | None = None
    supervisor: Any = None                      # Supervisor, when the actors persist to Redis
    telemetry: tuple[Any, Any] | None = None    # (metrics, alerts) handed to every actor

    def handles(self) -> dict[str, Any]:
        """Every actor by a readable name (for the dashboard check and supervision)."""
        named = {"coordinator": self.coordinator}
        named.update({f"feed-{v}": h for v, h in self.feeds.items()})
        named.update({f"strategy-{i}": h for i, (h, _) in enumerate(self.strategies)})
        if self.alerts is not None:
            named["alerts"] = self.alerts
        if self.metrics is not None:
            named["metrics"] = self.metrics
        if self.supervisor is not None:
            named["supervisor"] = self.supervisor
        return named


def start(params, universe: Universe, balances: dict, ccxt_configs: dict[str, dict], *, shard_size: int = 10,
          flush_ms: float = 2, record_dir: Path | None = None, synthetic: bool = False,
          clocked: bool = False, tag: str = "", alerts_config: Any = None, alerts_dir: Path | None = None,
          metrics_port: int = 0, coordinator_cls: Any = None, coordinator_kwargs: dict | None = None,
          persist: Persist | None = None, policy: Any = None, store_url: str | None = None,
          placement: Placement | None = None) -> ActorGraph:
    """Create the actors (named `<role>@<tag>`, so the Ray dashboard lists them readably) and start the feeds.

    `alerts_config` (alerts.config.AlertsConfig) adds the AlertDispatcherActor, `metrics_port` > 0 the
    MetricsActor serving Prometheus on 127.0.0.1; every other actor then reports through Telemetry.
    `coordinator_cls` (live: actors.live_coordinator) replaces the paper coordinator; it takes the same
    arguments plus `coordinator_kwargs`. With `persist` the stateful actors snapshot to Redis and a
    Supervisor (supervisors/) starts them and restarts a dead one from its snapshot; after a restart
    call `rewire`, which hands every actor the current handles of its peers. `placement` (a multi-node
    cluster, paper/placement.py) puts the supervisor, alerts and metrics on the head and the others on
    the worker nodes, spread, a restart included; without it Ray places them (one node).
    """
    at = f"@{tag}" if tag else ""
    if placement is not None:
        placement.check(ray.nodes())

    def named(name: str) -> dict:
        return placement.options(name) if placement is not None else {"name": name}
    from actors.alert_dispatcher import AlertDispatcherActor
    from actors.coordinator import PortfolioRiskCoordinator
    from actors.feed import ExchangeFeedActor
    from actors.metrics_actor import MetricsActor
    from actors.strategy import SymbolStrategyActor

    def persisted(restarts: int) -> Persist | None:
        return persist.restarted(persist.restarts + restarts) if persist is not None else None

    metrics = MetricsActor.options(**named(f"metrics{at}")).remote(metrics_port) if metrics_port else None

    def alerts_factory(r: int) -> Any:
        return AlertDispatcherActor.options(**named(f"alerts{at}")).remote(
            alerts_config, str(alerts_dir) if alerts_dir else None, None, metrics, persist=persisted(r))
    supervisor = alerts = None
    if persist is not None:
        from supervisors.supervisor import Supervisor
        # The supervisor's own P0 alerts go to whichever dispatcher is current: it restarts that one too.
        supervisor = Supervisor.options(**named(f"supervisor{at}")).remote(
            f"supervisor{at}", policy, "alerts" if alerts_config is not None else None)
        if alerts_config is not None:
            ray.get(supervisor.watch.remote("alerts", alerts_factory))
            alerts = ray.get(supervisor.handle.remote("alerts"))
    elif alerts_config is not None:
        alerts = alerts_factory(0)
    telemetry = (metrics, alerts) if (metrics or alerts) else None
    coins = list(universe.coins)
    coordinator_cls = coordinator_cls or PortfolioRiskCoordinator
    extra = coordinator_kwargs or {}

    # One factory per actor, `factory(restarts) -> handle`: the supervisor calls it again after a death.
    factories: dict[str, Any] = {
        "coordinator": lambda r: coordinator_cls.options(**named(f"coordinator{at}")).remote(
            coins, params, balances, clocked, telemetry, persist=persisted(r), store_url=store_url, **extra)}
    groups = shards(coins, shard_size)
    for i, group in enumerate(groups):
        factories[f"strategy-{i}"] = lambda r, i=i, group=group: SymbolStrategyActor.options(
            **named(f"strategy-{i}{at}")).remote(group, params.strategy, params.market, params.fx, None, clocked,
                                             telemetry, f"strategy-{i}", persisted(r))
    for venue, config in ccxt_configs.items():
        record = str(recording.venue_file(record_dir, venue)) if record_dir is not None else None
        factories[f"feed-{venue}"] = lambda r, venue=venue, config=config, record=record: \
            ExchangeFeedActor.options(**named(f"feed-{venue}{at}")).remote(
                venue, config, universe.symbols[venue], [], flush_ms, record, synthetic, telemetry)
    if supervisor is not None:
        ray.get([supervisor.watch.remote(name, factory, **WATCH.get(name, {})) for name, factory in factories.items()
                 if not name.startswith("feed-")])
        handles = {name: ray.get(supervisor.handle.remote(name)) for name in factories
                   if not name.startswith("feed-")}
    else:
        handles = {name: factory(0) for name, factory in factories.items() if not name.startswith("feed-")}
    graph = ActorGraph(handles["coordinator"], [(handles[f"strategy-{i}"], g) for i, g in enumerate(groups)],
                       {}, alerts, metrics, None, supervisor, telemetry)
    wire(graph)
    # Feeds last: they start sending the moment they are ready, so their sinks must exist.
    for name, factory in factories.items():
        if name.startswith("feed-"):
            if supervisor is not None:
                ray.get(supervisor.watch.remote(name, factory, **WATCH["feed"]))
                graph.feeds[name.removeprefix("feed-")] = ray.get(supervisor.handle.remote(name))
            else:
                graph.feeds[name.removeprefix("feed-")] = factory(0)
    wire(graph)
    ray.get([f.ready.remote() for f in graph.feeds.values()])
    graph.metrics_url = ray.get(metrics.url.remote()) if metrics is not None else None
    return graph


def wire(graph: ActorGraph) -> None:
    """Hand every actor the current handles of its peers (at the start, and after a restart)."""
    routes = {sym: h for h, syms in graph.strategies for sym in syms}
    ray.get(graph.coordinator.set_peers.remote(routes, graph.telemetry))
    ray.get([h.set_peers.remote(graph.coordinator, graph.telemetry) for h, _ in graph.strategies])
    sinks = [(graph.coordinator, None)] + [(h, frozenset(s) | {FX_SYMBOL}) for h, s in graph.strategies]
    ray.get([f.set_sinks.remote(sinks, graph.telemetry) for f in graph.feeds.values()])


def rewire(graph: ActorGraph) -> list[str]:
    """Take the supervisor's current handles (new ones after restarts) and wire them; return who changed."""
    if graph.supervisor is None:
        return []
    changed = []
    if graph.alerts is not None:     # watched whenever there is a supervisor (graph.start)
        current = ray.get(graph.supervisor.handle.remote("alerts"))
        if current != graph.alerts:
            graph.alerts, graph.telemetry = current, (graph.metrics, current)
            changed.append("alerts")
    current = ray.get(graph.supervisor.handle.remote("coordinator"))
    if current != graph.coordinator:
        graph.coordinator = current
        changed.append("coordinator")
    for i, (handle, group) in enumerate(graph.strategies):
        current = ray.get(graph.supervisor.handle.remote(f"strategy-{i}"))
        if current != handle:
            graph.strategies[i] = (current, group)
            changed.append(f"strategy-{i}")
    for venue, handle in list(graph.feeds.items()):
        current = ray.get(graph.supervisor.handle.remote(f"feed-{venue}"))
        if current != handle:
            graph.feeds[venue] = current
            changed.append(f"feed-{venue}")
    wire(graph)
    if any(name == "coordinator" or name.startswith("strategy-") for name in changed):
        ray.get(ray.get(graph.coordinator.resync.remote()))    # no shard waits on an answer that died
    return changed


def health(graph: ActorGraph) -> dict:
    """Snapshot write counters of the stateful actors and the supervisor's restart records (KPI file)."""
    stats = ray.get([graph.coordinator.snapshot_stats.remote()] +
                    [h.snapshot_stats.remote() for h, _ in graph.strategies] +
                    ([graph.alerts.snapshot_stats.remote()] if graph.alerts is not None else []))
    stats = [s for s in stats if s is not None]
    ok, failed = sum(s["writes_ok"] for s in stats), sum(s["writes_failed"] for s in stats)
    restarts = ray.get(graph.supervisor.restart_records.remote()) if graph.supervisor is not None else []
    return {"snapshots": stats, "restarts": restarts,
            "snapshot_success_rate_pct": round(ok / (ok + failed) * 100, 4) if ok + failed else None}


def stop(graph: ActorGraph) -> tuple[dict, list[dict], Any]:
    """Stop the feeds (flushing what they hold), drain the strategies, finish the desk; kill the actors."""
    if graph.supervisor is not None:   # first, or it would restart what is stopped below
        ray.get(graph.supervisor.stop.remote(kill=False))
    feed_stats = dict(zip(graph.feeds, ray.get([f.stop.remote() for f in graph.feeds.values()])))
    shard_stats = ray.get([h.stats.remote() for h, _ in graph.strategies])  # queued batches are done by now
    desk = ray.get(graph.coordinator.finish.remote())
    if graph.alerts is not None:      # deliver what is queued before the dispatcher goes
        ray.get(graph.alerts.close.remote())
    for handle in graph.handles().values():
        ray.kill(handle)
    return feed_stats, shard_stats, desk
