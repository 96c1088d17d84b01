"""AlertDispatcherActor: every actor's alerts in; log file always, Telegram/Slack when configured.

A thin Ray shell around alerts.dispatcher.AlertDispatcherCore. `emit` only routes (severity table,
throttling, aggregation into summaries) and enqueues; each channel's own thread delivers with its
own timeout and retries, so a dead or hung notifier never holds up the actor that raised an alert,
nor the next `emit`. Callers send `emit.remote([...])` without waiting for it.
Secrets are read by variable name (the profile names them) from this worker's environment, which
is the driver's at ray.init; `env` can hand them over instead (tests, or a secrets file read by the
driver). A runtime_env with env_vars would work too but costs a dedicated worker (~3 s to start).

With `persist` the undelivered alerts (each with the channels still owed) are snapshotted to Redis
under `arb:{run}:alerts:dispatcher` after every emit and after deliveries, and a restart queues
them again: delivery is at least once (an alert in flight at the death may be sent twice).
An alert whose fields carry an `alert_id` is taken once: senders that re-send after their own
restart (the coordinator re-reports its restored history) are not delivered twice. The ids seen
are part of the snapshot (the newest SEEN_MAX of them).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Mapping

import ray

from actors.persistence import Persist, snapshotter
from actors.telemetry import Telemetry
from alerts.config import AlertsConfig, build_dispatcher
from alerts.dispatcher import pending_from_state, state_of
from alerts.events import Alert
from metrics.registry import alert_outcome_update

log = logging.getLogger("actors.alerts")
SEEN_MAX = 50_000     # alert ids remembered for de-duplication


class OutcomeCounter:
    """The core's metrics hook (alert_outcome), forwarded to the MetricsActor through Telemetry."""

    def __init__(self, telemetry: Telemetry):
        self.telemetry = telemetry

    def alert_outcome(self, channel: str, severity: str, outcome: str) -> None:
        metric, labels = alert_outcome_update(channel, severity, outcome)
        self.telemetry.inc(metric, **labels)


@ray.remote(num_cpus=0, concurrency_groups={"drain": 1})
class AlertDispatcherActor:
    """Restores undelivered alerts from `state` in the constructor, so a restart is a cold start with state.

    `metrics`: a MetricsActor handle for the alerts-sent counters, or None. flush/close wait on
    the channels, so they run in their own concurrency group and never delay an `emit`.
    """

    def __init__(self, config: AlertsConfig, base_dir: str | None = None, state: dict | None = None,
                 metrics: Any = None, flush_ms: int = 250, env: Mapping[str, str] | None = None,
                 persist: Persist | None = None, watch_s: float = 0.2):
        if not isinstance(config, AlertsConfig):
            raise TypeError(f"alert dispatcher: config must be AlertsConfig, got {type(config).__name__}")
        pending = pending_from_state(state) if state is not None else []
        self.telemetry = Telemetry(metrics, "alerts", flush_ms) if metrics is not None else None
        self.core = build_dispatcher(config, env=env, base_dir=Path(base_dir) if base_dir else None,
                                     metrics=OutcomeCounter(self.telemetry) if self.telemetry else None,
                                     pending=pending)
        self.counts = {"emitted": 0, "refused": 0, "restored": len(pending), "repeats": 0}
        self.seen: dict[str, None] = {}        # alert ids taken, oldest first
        self._snap_lock = threading.Lock()     # emit and the delivery watch both write snapshots
        self.snap = snapshotter(persist, "alerts", "dispatcher", self._export, self._load)
        self._stop = threading.Event()
        if self.snap is not None:
            threading.Thread(target=self._watch_deliveries, args=(watch_s,), name="alerts-snapshots",
                             daemon=True).start()

    def _export(self) -> dict:
        return {"queue": self.state(), "seen": list(self.seen)}

    def _load(self, doc: dict) -> None:
        seen = doc["seen"]
        if not isinstance(seen, list) or not all(isinstance(x, str) for x in seen):
            raise ValueError("alerts snapshot: 'seen' must be a list of alert ids")
        self.counts["restored"] += self.core.restore(pending_from_state(doc["queue"], "alerts snapshot.queue"))
        self.seen = dict.fromkeys(seen)

    def _first_time(self, alert: Alert) -> bool:
        """False for an alert id already taken (a sender's re-send); remembers the id otherwise."""
        alert_id = alert.fields.get("alert_id")
        if alert_id is None:
            return True
        if alert_id in self.seen:
            self.counts["repeats"] += 1
            return False
        self.seen[alert_id] = None
        if len(self.seen) > SEEN_MAX:
            del self.seen[next(iter(self.seen))]
        return True

    def _snapshot(self) -> None:
        if self.snap is not None:
            with self._snap_lock:
                self.snap.changed(urgent=True)

    def _watch_deliveries(self, every_s: float) -> None:
        """Snapshot again once channels have delivered (or given up on) alerts, so a restart resends less."""
        seen = None
        while not self._stop.wait(every_s):
            done = sum(s.sent + s.failed + s.dropped for s in self.core.stats().values())
            if done != seen:
                seen = done
                self._snapshot()

    def emit(self, events: list[Alert | dict]) -> int:
        """Route and queue a batch of alerts (Alert or Alert.to_dict() form); return how many were taken.

        Bad items are logged, counted and named in the ValueError raised after the good ones are
        queued: one malformed event never costs the others.
        """
        if not isinstance(events, (list, tuple)):
            raise TypeError(f"alert dispatcher: emit takes a list of alerts, got {type(events).__name__}")
        problems = []
        for i, event in enumerate(events):
            try:
                alert = event if isinstance(event, Alert) else Alert.from_dict(event, f"emit[{i}]")
                if self._first_time(alert):
                    self.core.submit(alert)
                    self.counts["emitted"] += 1
            except (TypeError, ValueError) as exc:
                source = event.get("source", "?") if isinstance(event, dict) else "?"
                problems.append(f"alert dispatcher: {exc} (source {source})")
        self._snapshot()     # before answering: an alert the caller saw taken survives this actor's death
        if problems:
            self.counts["refused"] += len(problems)
            for problem in problems:
                log.error("%s", problem)
            raise ValueError("; ".join(problems))
        return len(events)

    @ray.method(concurrency_group="drain")
    def flush(self, timeout_s: float = 5.0) -> bool:
        """Send throttle summaries now and wait until every channel's queue is empty (or timeout)."""
        return self.core.flush(timeout_s)

    def state(self) -> dict[str, Any]:
        """Undelivered alerts with the channels still owed, JSON-able (for a Redis snapshot)."""
        return state_of(self.core.pending())

    def restore(self, state: dict[str, Any]) -> int:
        """Queue the alerts of a `state()` again; return how many."""
        n = self.core.restore(pending_from_state(state))
        self.counts["restored"] += n
        return n

    def stats(self) -> dict[str, Any]:
        """Per destination sent/failed/throttled/dropped, plus alerts emitted, refused and restored."""
        return {"destinations": {name: s.to_dict() for name, s in self.core.stats().items()}, **self.counts}

    def snapshot_stats(self) -> dict | None:
        return self.snap.stats() if self.snap is not None else None

    @ray.method(concurrency_group="drain")
    def close(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """Flush, stop the channel threads, and return the state of what could not be delivered."""
        self._stop.set()
        left = self.core.close(timeout_s)
        self._snapshot()     # what could not be delivered stays in Redis too
        if self.telemetry is not None:
            self.telemetry.close()
        return state_of(left)
