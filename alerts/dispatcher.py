"""AlertDispatcherCore: route, throttle and fan alerts out to destinations without blocking callers.

Plain Python (no Ray): the AlertDispatcher actor wraps it. Each destination has its own bounded
queue and thread (channel_worker), so a slow or dead channel is logged, counted and skipped
while the others keep delivering. freqtrade's rpc_manager is the model.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

from alerts.channel_worker import ChannelWorker, RetryPolicy
from alerts.destinations.base import Destination
from alerts.events import Alert
from alerts.masking import Masker
from alerts.routing import LOG_CHANNEL, AlertRouter, Delivery, RoutingTable

log = logging.getLogger(__name__)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Pending:
    """An alert still owed to some channels; what a snapshot stores and a restart restores."""

    alert: Alert
    channels: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"alert": self.alert.to_dict(), "channels": list(self.channels)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "pending") -> "Pending":
        if not isinstance(raw, Mapping) or "alert" not in raw or "channels" not in raw:
            raise ValueError(f"{where}: expected a mapping with 'alert' and 'channels'")
        channels = raw["channels"]
        if isinstance(channels, str) or not all(isinstance(c, str) for c in channels):
            raise ValueError(f"{where}.channels: expected a list of channel names")
        return cls(Alert.from_dict(raw["alert"], f"{where}.alert"), tuple(channels))


STATE_VERSION = 1


def state_of(pending: Iterable[Pending]) -> dict[str, Any]:
    """The JSON-able snapshot of undelivered alerts (what AlertDispatcherActor.state returns)."""
    return {"version": STATE_VERSION, "pending": [p.to_dict() for p in pending]}


def pending_from_state(raw: Any, where: str = "alerts state") -> list[Pending]:
    """Read `state_of` output back; a wrong version or a bad item is named with `where`."""
    if not isinstance(raw, Mapping) or set(raw) != {"version", "pending"}:
        raise ValueError(f"{where}: expected a mapping with exactly 'version' and 'pending'")
    if raw["version"] != STATE_VERSION:
        raise ValueError(f"{where}: version {raw['version']!r} unknown (this build reads {STATE_VERSION})")
    items = raw["pending"]
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"{where}.pending: expected a list, got {type(items).__name__}")
    return [Pending.from_dict(item, f"{where}.pending[{i}]") for i, item in enumerate(items)]


@dataclass(frozen=True, slots=True)
class ChannelStats:
    """Counts for one channel since start: delivered, given up on, held by throttling, dropped."""

    sent: int = 0
    failed: int = 0
    throttled: int = 0
    dropped: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class AlertDispatcherCore:
    """Accepts alerts from any thread; `submit` only routes and enqueues, never waits on I/O."""

    def __init__(self, destinations: Sequence[Destination], router: AlertRouter | None = None,
                 queue_size: int = 1000, retry: RetryPolicy = RetryPolicy(),
                 clock: Callable[[], int] = wall_clock_ms, tick_s: float = 1.0,
                 pending: Iterable[Pending] = (), metrics: Any = None) -> None:
        names = [d.name for d in destinations]
        if len(set(names)) != len(names):
            raise ValueError(f"alerts: duplicate destination names {names}")
        if LOG_CHANNEL not in names:
            raise ValueError("alerts: the log destination is required (it is always on)")
        self._router = router or AlertRouter(RoutingTable.default(names))
        unknown = self._router.table.channels - set(names)
        if unknown:
            raise ValueError(f"alerts.routing names channels with no destination: {sorted(unknown)}")
        self._clock = clock
        self._metrics = metrics
        self._masker = Masker(s for d in destinations for s in d.secrets)
        self._lock = threading.Lock()      # guards the router and the closed flag
        self._stats_lock = threading.Lock()
        self._counts = {name: dict.fromkeys(("sent", "failed", "throttled", "dropped"), 0)
                        for name in names}
        self._closed = False
        self._workers = {d.name: ChannelWorker(d, queue_size, retry, self._record, self._masker)
                         for d in destinations}
        self.restore(pending)
        self._stop_tick = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, args=(tick_s,),
                                        name="alerts-tick", daemon=True)
        self._ticker.start()

    def submit(self, alert: Alert) -> None:
        """Route and enqueue; returns at once whatever the destinations are doing."""
        if not isinstance(alert, Alert):
            raise TypeError(f"alerts.submit: expected Alert, got {type(alert).__name__}")
        alert = self._scrub(alert)
        with self._lock:
            if self._closed:
                raise RuntimeError("alerts: dispatcher is closed")
            result = self._router.route(alert, self._clock())
        for channel in result.throttled:
            self._count(channel, "throttled")
        self._enqueue(result.deliveries)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Send summaries of open throttle windows, then wait for every queue to drain."""
        with self._lock:
            summaries = self._router.flush(self._clock())
        self._enqueue(summaries)
        deadline = time.monotonic() + timeout_s
        return all(worker.wait_idle(deadline) for worker in self._workers.values())

    def close(self, timeout_s: float = 5.0) -> list[Pending]:
        """Flush, stop the threads, and return what could not be delivered in time."""
        drained = self.flush(timeout_s)
        with self._lock:
            self._closed = True
        self._stop_tick.set()
        for worker in self._workers.values():
            worker.stop(timeout_s if not drained else 1.0)
        return self.pending()

    def restore(self, pending: Iterable[Pending]) -> int:
        """Queue alerts from a snapshot again, each to the channels it was still owed; return how many.

        Delivery is at least once: an alert that was in flight when the snapshot was taken may
        reach a chat twice after a restart, which beats losing a P0.
        """
        items = list(pending)
        if self._closed:
            raise RuntimeError("alerts: dispatcher is closed")
        for i, item in enumerate(items):     # all checked before any is queued
            if not isinstance(item, Pending):
                raise TypeError(f"alerts.restore: item {i} is a {type(item).__name__}, expected Pending")
        for item in items:
            self._restore(item)
        return len(items)

    def stats(self) -> dict[str, ChannelStats]:
        with self._stats_lock:
            return {name: ChannelStats(**counts) for name, counts in self._counts.items()}

    def pending(self) -> list[Pending]:
        """Alerts not yet delivered, each with the channels still owed, oldest first per channel."""
        owed: dict[int, tuple[Alert, list[str]]] = {}
        for name, worker in self._workers.items():
            for alert in worker.contents():
                owed.setdefault(id(alert), (alert, []))[1].append(name)
        return [Pending(alert, tuple(channels)) for alert, channels in owed.values()]

    def _scrub(self, alert: Alert) -> Alert:
        """Mask every channel's secrets in the alert itself, so no channel or snapshot sees one."""
        if not self._masker:
            return alert
        message = self._masker(alert.message)
        fields = {k: self._masker(v) if isinstance(v, str) else v for k, v in alert.fields.items()}
        if message == alert.message and fields == alert.fields:
            return alert
        return replace(alert, message=message, fields=fields)

    def _enqueue(self, deliveries: Iterable[Delivery]) -> None:
        for delivery in deliveries:
            for channel in delivery.channels:
                self._workers[channel].offer(delivery.alert)

    def _restore(self, item: Pending) -> None:
        """Requeue a snapshot's alert as it was routed; a channel since removed falls back to log."""
        targets = [c for c in item.channels if c in self._workers]
        if len(targets) < len(item.channels):
            gone = sorted(set(item.channels) - set(targets))
            log.warning("alerts: restored %s alert for removed channel(s) %s goes to the log",
                        item.alert.kind, gone)
            targets = sorted(set(targets) | {LOG_CHANNEL})
        for channel in targets:
            self._workers[channel].offer(item.alert)

    def _record(self, channel: str, alert: Alert, outcome: str) -> None:
        self._count(channel, outcome)
        if self._metrics is not None:
            self._metrics.alert_outcome(channel, alert.severity.name, outcome)

    def _count(self, channel: str, outcome: str) -> None:
        with self._stats_lock:
            self._counts[channel][outcome] += 1

    def _tick_loop(self, tick_s: float) -> None:
        """Close expired throttle windows even when no new alert arrives to do it."""
        while not self._stop_tick.wait(tick_s):
            with self._lock:
                summaries = self._router.tick(self._clock())
            self._enqueue(summaries)
