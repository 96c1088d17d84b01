"""Telemetry: the client every actor uses to report metrics (MetricsActor) and alerts (AlertDispatcherActor).

Ray actors live in separate processes, so each keeps a small buffer (metrics.batch, plus a list of
alerts) and sends it in one call per destination every `flush_ms` from a daemon thread: the hot
path only appends under a lock (microseconds), never makes a Ray call. Updates and alerts are
checked where they are made (a typo raises at the caller); a P0 alert goes out at once. Sends are
fire-and-forget; their outcome is looked at on the next flush. When the metrics actor stops
answering, metric batches are dropped and counted rather than piling up. Alerts are kept: a batch
the dispatcher never took (it died, or is restarting) is queued again and sent to the handle that
`retarget` hands over, so alerts reach a restarted dispatcher at least once; only beyond
`max_buffered` waiting alerts are the oldest written to this process's log instead.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

import ray
from ray.exceptions import RayActorError

from alerts.events import Alert, Severity
from metrics.batch import BatchBuffer, batch_size

log = logging.getLogger("actors.telemetry")
MAX_IN_FLIGHT = 20     # unanswered sends before new batches are dropped (destination hung or gone)


class Telemetry:
    """inc/set/observe/hop buffer metric updates, alert() buffers alerts; a thread sends both.

    `sink`: a MetricsActor handle; `alerts`: an AlertDispatcherActor handle. Either may be None:
    metric updates are then checked and discarded (metrics off in the profile), alerts are
    written to this process's log so none is lost silently.
    """

    def __init__(self, sink: Any, source: str, flush_ms: int = 1000, max_buffered: int = 20_000,
                 alerts: Any = None):
        if not isinstance(source, str) or not source:
            raise ValueError(f"telemetry: source must be a non-empty string, got {source!r}")
        if not 1 <= flush_ms <= 60_000:
            raise ValueError(f"telemetry {source}: flush_ms {flush_ms} outside 1..60000")
        if max_buffered < 1:
            raise ValueError(f"telemetry {source}: max_buffered {max_buffered} must be >= 1")
        self.sink, self.alerts, self.source = sink, alerts, source
        self.flush_s, self.max_buffered = flush_ms / 1000, max_buffered
        self.counts = {"pushes": 0, "updates": 0, "alerts": 0, "failed": 0, "dropped": 0}
        self._buffer = BatchBuffer()
        self._pending_alerts: list[Alert] = []
        self._lock = threading.Lock()          # guards the buffers (the hot path)
        self._send_lock = threading.Lock()     # guards in-flight sends and counters
        self._in_flight: deque = deque()
        self._alert_batches: dict[Any, list[Alert]] = {}   # in-flight emit -> its alerts, until answered
        self._stop = threading.Event()
        self._thread = None
        if sink is not None or alerts is not None:
            self._thread = threading.Thread(target=self._run, name=f"telemetry-{source}", daemon=True)
            self._thread.start()

    def retarget(self, destinations: tuple[Any, Any] | None) -> None:
        """After a restart of the metrics or alerts actor: send to its new handle (metrics, alerts)."""
        if destinations is not None:
            self.sink, self.alerts = destinations

    def inc(self, metric: str, value: float = 1, **labels: str) -> None:
        self._add("inc", metric, labels, value)

    def set(self, metric: str, value: float, **labels: str) -> None:
        self._add("set", metric, labels, value)

    def observe(self, metric: str, value: float, **labels: str) -> None:
        self._add("observe", metric, labels, value)

    def hop(self, hop: str, seconds: float) -> None:
        """One latency sample of a decision-path hop (metrics.registry.HOPS)."""
        self._add("observe", "hop_latency", {"hop": hop}, seconds)

    def alert(self, severity: str | int | Severity, kind: str, message: str, symbol: str | None = None,
              **fields: Any) -> None:
        """Queue an alert from this source, stamped now; a bad one raises here. P0 is sent at once."""
        alert = Alert(severity, kind, self.source, symbol, message, time.time_ns() // 1_000_000, fields)
        with self._lock:
            self._pending_alerts.append(alert)
            full = len(self._pending_alerts) >= self.max_buffered
        if alert.severity is Severity.P0 or full:
            self.flush()

    def flush(self) -> int:
        """Send what is buffered now, one call per destination; return how many updates and alerts went."""
        with self._send_lock:     # the thread and a caller with a full buffer may flush at once
            with self._lock:
                batch = self._buffer.take(self.source)
                alerts, self._pending_alerts = self._pending_alerts, []
            self._reap()
            sent = 0
            if batch is not None and self.sink is not None:
                sent += self._send(self.sink.push, batch, batch_size(batch), "updates")
            if alerts and self.alerts is None:
                for alert in alerts:
                    log.warning("alert (no dispatcher) %s", alert.to_dict())
            elif alerts:
                if len(self._in_flight) >= MAX_IN_FLIGHT:     # dispatcher slow or gone: keep them for later
                    self._requeue(alerts)
                else:
                    sent += self._send(self.alerts.emit, alerts, len(alerts), "alerts")
                    self._alert_batches[self._in_flight[-1]] = alerts
            return sent

    def stats(self) -> dict[str, int]:
        """Metric pushes, updates and alerts sent, sends that failed, items dropped while unanswered."""
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
            with self._lock:
                left, self._pending_alerts = self._pending_alerts, []
            for alert in left:     # the dispatcher is gone for good: the log keeps them
                self.counts["dropped"] += 1
                log.error("alert (dispatcher unreachable at close) %s", alert.to_dict())
            return dict(self.counts)

    def _add(self, verb: str, metric: str, labels: dict, value: float) -> None:
        with self._lock:
            self._buffer.add(verb, metric, labels, value)
            full = self._buffer.updates >= self.max_buffered
        if full:   # a burst between two ticks: send now rather than grow without bound
            self.flush()

    def _send(self, method: Any, payload: Any, n: int, what: str) -> int:
        """One fire-and-forget call, unless too many earlier ones are unanswered (then drop and count)."""
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            self.counts["dropped"] += n
            log.warning("telemetry %s: %d sends unanswered; dropped %d %s", self.source, len(self._in_flight), n, what)
            return 0
        self._in_flight.append(method.remote(payload))
        self.counts[what] += n
        if what == "updates":
            self.counts["pushes"] += 1
        return n

    def _reap(self) -> None:
        """Collect answers of sends that finished; count and log the ones that failed."""
        if not self._in_flight:
            return
        done, _ = ray.wait(list(self._in_flight), num_returns=len(self._in_flight), timeout=0)
        for ref in done:
            self._in_flight.remove(ref)
            alerts = self._alert_batches.pop(ref, None)
            try:
                ray.get(ref)
            except RayActorError as exc:   # the actor died before answering: alerts go again, to its successor
                self.counts["failed"] += 1
                if alerts:
                    self.counts["alerts"] -= len(alerts)
                    self._requeue(alerts)
                log.warning("telemetry %s: a send failed: %s", self.source, exc)
            except Exception as exc:  # a batch refused (its bad items named): never stop trading for it
                self.counts["failed"] += 1
                log.warning("telemetry %s: a send failed: %s", self.source, exc)

    def _requeue(self, alerts: list[Alert]) -> None:
        """Put unsent alerts back in front of newer ones; past max_buffered the oldest go to the log."""
        with self._lock:
            self._pending_alerts[:0] = alerts
            spill = len(self._pending_alerts) - self.max_buffered
            spilled, self._pending_alerts = (self._pending_alerts[:spill], self._pending_alerts[spill:]) \
                if spill > 0 else ([], self._pending_alerts)
        for alert in spilled:
            self.counts["dropped"] += 1
            log.error("alert (dispatcher unreachable) %s", alert.to_dict())

    def _run(self) -> None:
        while not self._stop.wait(self.flush_s):
            try:
                self.flush()
            except Exception:   # keep the thread alive whatever one flush hit
                log.exception("telemetry %s: flush failed", self.source)
