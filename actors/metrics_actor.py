"""MetricsActor: the system's one Prometheus endpoint; every actor pushes batched updates to it.

Ray actors are separate processes with separate memory, so one registry (metrics.registry) lives
here, served by metrics.server, and the others send deltas through actors.telemetry.Telemetry:
one port to scrape, the names the Grafana dashboard queries, a few calls a second per actor.
"""
from __future__ import annotations

import logging
from typing import Any

import ray

from metrics.batch import apply_batch
from metrics.registry import build_metrics
from metrics.server import serve

log = logging.getLogger("actors.metrics")


@ray.remote(num_cpus=0)
class MetricsActor:
    """Holds the registry and its HTTP exporter on host:port (0 = a free port, see `url`)."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1"):
        self.metrics = build_metrics()
        self.server = serve(self.metrics.registry, port, host)
        self.counts = {"pushes": 0, "updates": 0, "refused": 0}
        self.sources: set[str] = set()

    def url(self) -> str:
        """Where Prometheus scrapes; a wildcard bind is reported with this node's address."""
        host = self.server.host
        if host in ("0.0.0.0", "::", ""):
            host = ray.util.get_node_ip_address()
        return f"http://{host}:{self.server.port}/metrics"

    def push(self, batch: dict[str, Any]) -> int:
        """Apply one Telemetry batch; refused entries are logged and raised after the rest apply."""
        applied, problems = apply_batch(self.metrics, batch)
        self.counts["pushes"] += 1
        self.counts["updates"] += applied
        if isinstance(batch, dict):
            self.sources.add(str(batch.get("source", "?")))
        if problems:
            self.counts["refused"] += len(problems)
            for problem in problems:
                log.error("%s", problem)
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise ValueError("; ".join(problems[:3]) + more)
        return applied

    def stats(self) -> dict[str, Any]:
        return {**self.counts, "sources": sorted(self.sources)}

    def close(self) -> None:
        self.server.close()
