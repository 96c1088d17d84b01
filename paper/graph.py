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
from paper import recording
from paper.universe import Universe


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

    def handles(self) -> dict[str, Any]:
        """Every actor by a readable name (for the dashboard check and supervision)."""
        named = {"coordinator": self.coordinator}
        named.update({f"feed-{v}": h for v, h in self.feeds.items()})
        named.update({f"strategy-{i}": h for i, (h, _) in enumerate(self.strategies)})
        if self.alerts is not None:
            named["alerts"] = self.alerts
        if self.metrics is not None:
            named["metrics"] = self.metrics
        return named


def start(params, universe: Universe, balances: dict, ccxt_configs: dict[str, dict], *, shard_size: int = 10,
          flush_ms: int = 20, record_dir: Path | None = None, synthetic: bool = False,
          clocked: bool = False, tag: str = "", alerts_config: Any = None, alerts_dir: Path | None = None,
          metrics_port: int = 0, coordinator_cls: Any = None, coordinator_kwargs: dict | None = None) -> ActorGraph:
    """Create the actors (named `<role>@<tag>`, so the Ray dashboard lists them readably) and start the feeds.

    `alerts_config` (alerts.config.AlertsConfig) adds the AlertDispatcherActor, `metrics_port` > 0 the
    MetricsActor serving Prometheus on 127.0.0.1; every other actor then reports through Telemetry.
    `coordinator_cls` (live: actors.live_coordinator) replaces the paper coordinator; it takes the same
    arguments plus `coordinator_kwargs`.
    """
    at = f"@{tag}" if tag else ""
    from actors.alert_dispatcher import AlertDispatcherActor
    from actors.coordinator import PortfolioRiskCoordinator
    from actors.feed import ExchangeFeedActor
    from actors.metrics_actor import MetricsActor
    from actors.strategy import SymbolStrategyActor

    metrics = MetricsActor.options(name=f"metrics{at}").remote(metrics_port) if metrics_port else None
    alerts = (AlertDispatcherActor.options(name=f"alerts{at}").remote(
        alerts_config, str(alerts_dir) if alerts_dir else None, None, metrics)
        if alerts_config is not None else None)
    telemetry = (metrics, alerts) if (metrics or alerts) else None
    coins = list(universe.coins)
    coordinator_cls = coordinator_cls or PortfolioRiskCoordinator
    coord = coordinator_cls.options(name=f"coordinator{at}").remote(coins, params, balances, clocked, telemetry,
                                                                    **(coordinator_kwargs or {}))
    strategies = [(SymbolStrategyActor.options(name=f"strategy-{i}{at}").remote(
                       s, params.strategy, params.market, params.fx, coord, clocked, telemetry, f"strategy-{i}"), s)
                  for i, s in enumerate(shards(coins, shard_size))]
    ray.get(coord.set_routes.remote({sym: h for h, syms in strategies for sym in syms}))
    sinks = [(coord, None)] + [(h, frozenset(s) | {FX_SYMBOL}) for h, s in strategies]
    feeds = {}
    for venue, config in ccxt_configs.items():
        record = str(recording.venue_file(record_dir, venue)) if record_dir is not None else None
        feeds[venue] = ExchangeFeedActor.options(name=f"feed-{venue}{at}").remote(
            venue, config, universe.symbols[venue], sinks, flush_ms, record, synthetic, telemetry)
    ray.get([f.start.remote() for f in feeds.values()])
    url = ray.get(metrics.url.remote()) if metrics is not None else None
    return ActorGraph(coord, strategies, feeds, alerts, metrics, url)


def stop(graph: ActorGraph) -> tuple[dict, list[dict], Any]:
    """Stop the feeds (flushing what they hold), drain the strategies, finish the desk; kill the actors."""
    feed_stats = dict(zip(graph.feeds, ray.get([f.stop.remote() for f in graph.feeds.values()])))
    shard_stats = ray.get([h.stats.remote() for h, _ in graph.strategies])  # queued batches are done by now
    desk = ray.get(graph.coordinator.finish.remote())
    if graph.alerts is not None:      # deliver what is queued before the dispatcher goes
        ray.get(graph.alerts.close.remote())
    for handle in graph.handles().values():
        ray.kill(handle)
    return feed_stats, shard_stats, desk
