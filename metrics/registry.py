"""Every Prometheus metric of the system, defined once: names, help text, labels, buckets.

Metrics live on a CollectorRegistry object passed in (never the global default), so tests and
several actors in one process do not collide. Callers use the small helper methods, which
check label values, instead of reaching for raw metric objects.
"""
from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "arb"
# Hops of one decision: feed receive -> strategy decision -> coordinator decision -> order sent.
HOPS = ("feed_to_strategy", "strategy_to_coordinator", "coordinator_to_order", "feed_to_order")
# 0.1 ms .. 1 s: Ray calls cost 0.3-1 ms, a venue round trip tens of ms.
LATENCY_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                     0.1, 0.25, 0.5, 1.0)
VENUES = ("upbit", "binance", "binance_usdm")
SEVERITIES = ("P0", "P1", "P2", "P3")
ALERT_OUTCOMES = ("sent", "failed", "dropped")


@dataclass(frozen=True, slots=True)
class Metrics:
    """The metric objects of one registry, with checked helpers for the common updates."""

    registry: CollectorRegistry
    pnl_krw: Gauge
    win_rate: Gauge
    round_trips: Counter
    round_trips_per_hour: Gauge
    open_positions: Gauge
    guard_triggers: Counter
    alerts_sent: Counter
    alerts_undelivered: Counter
    book_updates: Counter
    snapshot_writes: Counter
    hop_latency: Histogram

    def observe_hop(self, hop: str, seconds: float) -> None:
        """Record one hop's latency; an unknown hop name is a bug, not a new series."""
        if hop not in HOPS:
            raise ValueError(f"metrics: unknown hop {hop!r} (expected one of {', '.join(HOPS)})")
        if seconds < 0:
            raise ValueError(f"metrics: negative latency {seconds} s for hop {hop!r}")
        self.hop_latency.labels(hop=hop).observe(seconds)

    def book_update(self, venue: str, count: int = 1) -> None:
        self.book_updates.labels(venue=venue).inc(count)

    def guard_triggered(self, guard: str) -> None:
        self.guard_triggers.labels(guard=guard).inc()

    def snapshot_written(self, ok: bool) -> None:
        self.snapshot_writes.labels(result="ok" if ok else "failed").inc()

    def alert_outcome(self, channel: str, severity: str, outcome: str) -> None:
        """Called by the alert dispatcher for each delivery attempt's final result."""
        if outcome == "sent":
            self.alerts_sent.labels(channel=channel, severity=severity).inc()
        elif outcome in ALERT_OUTCOMES:
            self.alerts_undelivered.labels(channel=channel, severity=severity,
                                           reason=outcome).inc()
        else:
            raise ValueError(f"metrics: unknown alert outcome {outcome!r}")

    def set_kpis(self, pnl_krw: float, win_rate: float, round_trips_per_hour: float,
                 open_positions: int) -> None:
        """Publish the ledger's current KPIs (gauges; round trips are counted as they close)."""
        if not 0.0 <= win_rate <= 1.0:
            raise ValueError(f"metrics: win_rate {win_rate} outside [0, 1]")
        self.pnl_krw.set(pnl_krw)
        self.win_rate.set(win_rate)
        self.round_trips_per_hour.set(round_trips_per_hour)
        self.open_positions.set(open_positions)


def build_metrics(registry: CollectorRegistry | None = None) -> Metrics:
    """Define every metric on `registry` (a fresh one if None); known label values start at 0."""
    registry = registry if registry is not None else CollectorRegistry()
    p = PREFIX
    metrics = Metrics(
        registry=registry,
        pnl_krw=Gauge(f"{p}_pnl_krw", "Realised PnL of closed round trips, KRW, net of fees",
                      registry=registry),
        win_rate=Gauge(f"{p}_win_rate", "Share of closed round trips with positive PnL (0..1)",
                       registry=registry),
        round_trips=Counter(f"{p}_round_trips", "Closed round trips (entry and exit of both legs)",
                            registry=registry),
        round_trips_per_hour=Gauge(f"{p}_round_trips_per_hour",
                                   "Closed round trips per hour of run time", registry=registry),
        open_positions=Gauge(f"{p}_open_positions", "Pair positions currently open",
                             registry=registry),
        guard_triggers=Counter(f"{p}_guard_triggers", "Decisions blocked by a risk guard",
                               ["guard"], registry=registry),
        alerts_sent=Counter(f"{p}_alerts_sent", "Alerts delivered, by channel and severity",
                            ["channel", "severity"], registry=registry),
        alerts_undelivered=Counter(f"{p}_alerts_undelivered",
                                   "Alerts not delivered (failed after retries, or dropped "
                                   "from a full queue)", ["channel", "severity", "reason"],
                                   registry=registry),
        book_updates=Counter(f"{p}_book_updates", "Order book updates received, by venue",
                             ["venue"], registry=registry),
        snapshot_writes=Counter(f"{p}_snapshot_writes", "State snapshot writes to Redis, by result",
                                ["result"], registry=registry),
        hop_latency=Histogram(f"{p}_hop_latency_seconds",
                              "Latency of one hop of the decision path, seconds", ["hop"],
                              buckets=LATENCY_BUCKETS_S, registry=registry),
    )
    for hop in HOPS:
        metrics.hop_latency.labels(hop=hop)
    for venue in VENUES:
        metrics.book_updates.labels(venue=venue)
    for result in ("ok", "failed"):
        metrics.snapshot_writes.labels(result=result)
    return metrics


_SERIES_SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",),
                    "histogram": ("_bucket", "_sum", "_count", "_created"),
                    "summary": ("", "_sum", "_count", "_created"), "info": ("_info",)}


def exposed_names(registry: CollectorRegistry) -> set[str]:
    """Every series name `registry` can show in a scrape (with _total, _bucket, ... suffixes).

    Taken from the metric families, not the current samples, so a labelled counter that has
    not been incremented yet still counts as defined.
    """
    names = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in _SERIES_SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names
