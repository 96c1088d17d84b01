"""Every Prometheus metric of the system, defined once: names, help text, labels, buckets.

Metrics live on a CollectorRegistry object passed in (never the global default), so tests and
several actors in one process do not collide. `SPECS` is the one table of what may be updated
and how: the checked helpers, the MetricsActor and the Telemetry client all check against it,
so a typo fails where it is made instead of becoming a new series.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

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
VENUE_EVENTS = ("requests", "orders_sent", "rate_limited", "failures", "retries", "recovered")  # live.venue.VenueStats
KILL_POLICIES = ("flatten", "freeze")
KIND_VERB = {"counter": "inc", "gauge": "set", "histogram": "observe"}


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric: Metrics attribute, type, help, labels, allowed label values and value bounds."""

    attr: str
    kind: str                                            # counter | gauge | histogram
    help: str
    labels: tuple[str, ...] = ()
    allowed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)   # label -> values
    bounds: tuple[float, float] | None = None           # gauges only

    @property
    def name(self) -> str:
        """The family name in a scrape (counters add _total, histograms _bucket/_sum/_count)."""
        return f"{PREFIX}_{self.attr}_seconds" if self.kind == "histogram" else f"{PREFIX}_{self.attr}"


SPECS: dict[str, MetricSpec] = {s.attr: s for s in (
    MetricSpec("pnl_krw", "gauge", "Realised PnL of closed round trips, KRW, net of fees"),
    MetricSpec("win_rate", "gauge", "Share of closed round trips with positive PnL (0..1)",
               bounds=(0.0, 1.0)),
    MetricSpec("round_trips", "counter", "Closed round trips (entry and exit of both legs)"),
    MetricSpec("round_trips_per_hour", "gauge", "Closed round trips per hour of run time",
               bounds=(0.0, math.inf)),
    MetricSpec("open_positions", "gauge", "Pair positions currently open", bounds=(0.0, math.inf)),
    MetricSpec("guard_triggers", "counter", "Decisions blocked by a risk guard", ("guard",)),
    MetricSpec("alerts_sent", "counter", "Alerts delivered, by channel and severity",
               ("channel", "severity"), {"severity": SEVERITIES}),
    MetricSpec("alerts_undelivered", "counter",
               "Alerts not delivered (failed after retries, or dropped from a full queue)",
               ("channel", "severity", "reason"),
               {"severity": SEVERITIES, "reason": ALERT_OUTCOMES[1:]}),
    MetricSpec("book_updates", "counter", "Order book updates received, by venue", ("venue",),
               {"venue": VENUES}),
    MetricSpec("snapshot_writes", "counter", "State snapshot writes to Redis, by result",
               ("result",), {"result": ("ok", "failed")}),
    MetricSpec("venue_events", "counter",
               "Live venue calls by outcome: requests, orders sent, HTTP 429/418 answers, failures, retries, "
               "lost replies recovered by client id", ("venue", "event"), {"venue": VENUES, "event": VENUE_EVENTS}),
    MetricSpec("kill_switch", "counter", "Kill switch engagements, by policy and whether everything was closed",
               ("policy", "result"), {"policy": KILL_POLICIES, "result": ("ok", "left_open")}),
    MetricSpec("hop_latency", "histogram", "Latency of one hop of the decision path, seconds",
               ("hop",), {"hop": HOPS}),
)}


def check_update(verb: str, attr: str, labels: Mapping[str, str], value: float) -> MetricSpec:
    """Refuse an update that would make a nonsense series; the error names metric, label or value."""
    spec = SPECS.get(attr)
    if spec is None:
        raise ValueError(f"metrics: unknown metric {attr!r} (known: {', '.join(SPECS)})")
    if KIND_VERB[spec.kind] != verb:
        raise ValueError(f"metrics: {attr} is a {spec.kind}; use {KIND_VERB[spec.kind]}(), not {verb}()")
    if set(labels) != set(spec.labels):
        raise ValueError(f"metrics: {attr} takes labels ({', '.join(spec.labels)}), "
                         f"got ({', '.join(sorted(labels))})")
    for label, allowed in spec.allowed.items():
        if labels[label] not in allowed:
            raise ValueError(f"metrics: unknown {label} {labels[label]!r} for {attr} "
                             f"(expected one of {', '.join(allowed)})")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"metrics: {attr} value {value!r} is not a finite number")
    if spec.kind == "counter" and value < 0:
        raise ValueError(f"metrics: counter {attr} cannot go down (inc by {value})")
    if spec.kind == "histogram" and value < 0:
        where = ", ".join(f"{k} {v!r}" for k, v in labels.items())
        raise ValueError(f"metrics: negative latency {value} s for {attr} ({where})")
    if spec.bounds is not None and not spec.bounds[0] <= value <= spec.bounds[1]:
        lo, hi = spec.bounds
        raise ValueError(f"metrics: {attr} {value} outside [{lo:g}, {hi:g}]")
    return spec


def alert_outcome_update(channel: str, severity: str, outcome: str) -> tuple[str, dict[str, str]]:
    """The counter and labels for one alert delivery's final result (sent, failed, dropped)."""
    if outcome == "sent":
        return "alerts_sent", {"channel": channel, "severity": severity}
    if outcome in ALERT_OUTCOMES:
        return "alerts_undelivered", {"channel": channel, "severity": severity, "reason": outcome}
    raise ValueError(f"metrics: unknown alert outcome {outcome!r}")


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
    venue_events: Counter
    kill_switch: Counter
    hop_latency: Histogram

    def apply(self, verb: str, attr: str, labels: Mapping[str, str], value: float) -> None:
        """One checked update: verb is inc, set or observe; see check_update for what is refused."""
        check_update(verb, attr, labels, value)
        metric = getattr(self, attr)
        if labels:
            metric = metric.labels(**labels)
        getattr(metric, verb)(value)

    def observe_hop(self, hop: str, seconds: float) -> None:
        """Record one hop's latency; an unknown hop name is a bug, not a new series."""
        self.apply("observe", "hop_latency", {"hop": hop}, seconds)

    def book_update(self, venue: str, count: int = 1) -> None:
        self.apply("inc", "book_updates", {"venue": venue}, count)

    def guard_triggered(self, guard: str) -> None:
        self.apply("inc", "guard_triggers", {"guard": guard}, 1)

    def snapshot_written(self, ok: bool) -> None:
        self.apply("inc", "snapshot_writes", {"result": "ok" if ok else "failed"}, 1)

    def alert_outcome(self, channel: str, severity: str, outcome: str) -> None:
        """Called by the alert dispatcher for each delivery attempt's final result."""
        attr, labels = alert_outcome_update(channel, severity, outcome)
        self.apply("inc", attr, labels, 1)

    def set_kpis(self, pnl_krw: float, win_rate: float, round_trips_per_hour: float,
                 open_positions: int) -> None:
        """Publish the ledger's current KPIs (gauges; round trips are counted as they close)."""
        values = {"win_rate": win_rate, "pnl_krw": pnl_krw,
                  "round_trips_per_hour": round_trips_per_hour, "open_positions": open_positions}
        for attr, value in values.items():     # check all before setting any
            check_update("set", attr, {}, value)
        for attr, value in values.items():
            getattr(self, attr).set(value)


_TYPES = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}


def build_metrics(registry: CollectorRegistry | None = None) -> Metrics:
    """Define every metric on `registry` (a fresh one if None); known label values start at 0."""
    registry = registry if registry is not None else CollectorRegistry()
    objects = {}
    for spec in SPECS.values():
        extra = {"buckets": LATENCY_BUCKETS_S} if spec.kind == "histogram" else {}
        # prometheus_client adds _total to counters itself; give it the bare name.
        objects[spec.attr] = _TYPES[spec.kind](spec.name, spec.help, spec.labels, registry=registry, **extra)
    metrics = Metrics(registry=registry, **objects)
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
