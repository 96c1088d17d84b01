"""Telemetry: the client every actor uses to report metrics to the one MetricsActor.

Ray actors live in separate processes, so each keeps a small buffer (metrics.batch) and sends it
in one `push` call every `flush_ms` from a daemon thread: the hot path only appends under a lock
(microseconds), never makes a Ray call. Updates are checked where they are made (a typo raises at
the caller). Sends are fire-and-forget; their outcome is looked at on the next flush, and when
the MetricsActor stops answering batches are dropped and counted rather than piling up.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

import ray

from metrics.batch import BatchBuffer, batch_size

log = logging.getLogger("actors.telemetry")
MAX_IN_FLIGHT = 20     # unanswered pushes before new batches are dropped (metrics actor hung or gone)


class Telemetry:
    """inc/set/observe buffer updates; a thread pushes them to `sink` (a MetricsActor handle).

    `sink` None keeps checking updates but sends nothing (metrics turned off in the profile).
    """

    def __init__(self, sink: Any, source: str, flush_ms: int = 250, max_buffered: int = 20_000):
        if not isinstance(source, str) or not source:
            raise ValueError(f"telemetry: source must be a non-empty string, got {source!r}")
        if not 1 <= flush_ms <= 60_000:
            raise ValueError(f"telemetry {source}: flush_ms {flush_ms} outside 1..60000")
        if max_buffered < 1:
            raise ValueError(f"telemetry {source}: max_buffered {max_buffered} must be >= 1")
        self.sink, self.source = sink, source
        self.flush_s, self.max_buffered = flush_ms / 1000, max_buffered
        self.counts = {"pushes": 0, "updates": 0, "failed": 0, "dropped": 0}
        self._buffer = BatchBuffer()
        self._lock = threading.Lock()          # guards the buffer (the hot path)
        self._send_lock = threading.Lock()     # guards in-flight pushes and counters
        self._in_flight: deque = deque()
        self._stop = threading.Event()
        self._thread = None
        if sink is not None:
            self._thread = threading.Thread(target=self._run, name=f"telemetry-{source}", daemon=True)
            self._thread.start()

    def inc(self, metric: str, value: float = 1, **labels: str) -> None:
        self._add("inc", metric, labels, value)

    def set(self, metric: str, value: float, **labels: str) -> None:
        self._add("set", metric, labels, value)

    def observe(self, metric: str, value: float, **labels: str) -> None:
        self._add("observe", metric, labels, value)

    def hop(self, hop: str, seconds: float) -> None:
        """One latency sample of a decision-path hop (metrics.registry.HOPS)."""
        self._add("observe", "hop_latency", {"hop": hop}, seconds)

    def flush(self) -> int:
        """Send what is buffered now, in one call; return how many updates it carried."""
        with self._send_lock:     # the thread and a caller with a full buffer may flush at once
            with self._lock:
                batch = self._buffer.take(self.source)
            if batch is None or self.sink is None:
                return 0
            n = batch_size(batch)
            self._reap()
            if len(self._in_flight) >= MAX_IN_FLIGHT:
                self.counts["dropped"] += n
                log.warning("telemetry %s: metrics actor has %d pushes unanswered; dropped %d updates",
                            self.source, len(self._in_flight), n)
                return 0
            self._in_flight.append(self.sink.push.remote(batch))
            self.counts["pushes"] += 1
            self.counts["updates"] += n
            return n

    def stats(self) -> dict[str, int]:
        """Pushes sent, updates carried (after coalescing), pushes that failed, updates dropped."""
        with self._send_lock:
            return dict(self.counts)

    def close(self, timeout_s: float = 2.0) -> dict[str, int]:
        """Stop the thread, send the rest, wait (bounded) for the answers; return the counters."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.flush()
        with self._send_lock:
            if self._in_flight:
                ray.wait(list(self._in_flight), num_returns=len(self._in_flight), timeout=timeout_s)
                self._reap()
        return dict(self.counts)

    def _add(self, verb: str, metric: str, labels: dict, value: float) -> None:
        with self._lock:
            self._buffer.add(verb, metric, labels, value)
            full = self._buffer.updates >= self.max_buffered
        if full:   # a burst between two ticks: send now rather than grow without bound
            self.flush()

    def _reap(self) -> None:
        """Collect answers of pushes that finished; count and log the ones that failed."""
        if not self._in_flight:
            return
        done, _ = ray.wait(list(self._in_flight), num_returns=len(self._in_flight), timeout=0)
        for ref in done:
            self._in_flight.remove(ref)
            try:
                ray.get(ref)
            except Exception as exc:  # actor gone or batch refused: metrics must never stop trading
                self.counts["failed"] += 1
                log.warning("telemetry %s: a push failed: %s", self.source, exc)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_s):
            try:
                self.flush()
            except Exception:   # keep the thread alive whatever one flush hit
                log.exception("telemetry %s: flush failed", self.source)
