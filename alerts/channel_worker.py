"""One destination's bounded queue and delivery thread: a slow channel delays only itself."""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from alerts.destinations.base import DeliveryError, Destination
from alerts.events import Alert, Severity
from alerts.masking import Masker

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """P0/P1 deliveries are retried with doubling backoff on 5xx, 429 and refused connections."""

    max_attempts: int = 3
    backoff_s: float = 0.25
    max_backoff_s: float = 5.0
    retry_up_to: Severity = Severity.P1

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"alerts.retry.max_attempts must be >= 1, got {self.max_attempts}")
        if self.backoff_s < 0 or self.max_backoff_s < self.backoff_s:
            raise ValueError("alerts.retry: need 0 <= backoff_s <= max_backoff_s")


# outcome is "sent", "failed" or "dropped"
ResultHook = Callable[[str, Alert, str], None]


class ChannelWorker:
    """Queue plus thread for one destination. `offer` never blocks; a full queue drops P3 first."""

    def __init__(self, destination: Destination, capacity: int, retry: RetryPolicy,
                 on_result: ResultHook, masker: Masker) -> None:
        if capacity < 1:
            raise ValueError(f"alerts.queue_size must be >= 1, got {capacity}")
        self.destination = destination
        self.name = destination.name
        self._capacity = capacity
        self._retry = retry
        self._on_result = on_result
        self._masker = masker
        self._queue: deque[Alert] = deque()
        self._inflight: Alert | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"alerts-{self.name}", daemon=True)
        self._thread.start()

    def offer(self, alert: Alert) -> None:
        """Queue an alert. When full, the least urgent (oldest first) of queue + newcomer is dropped."""
        dropped = None
        with self._cond:
            if len(self._queue) >= self._capacity:
                victim = max(range(len(self._queue)), key=lambda i: (self._queue[i].severity, -i))
                if self._queue[victim].severity > alert.severity:
                    dropped = self._queue[victim]
                    del self._queue[victim]
                else:
                    dropped = alert
            if dropped is not alert:
                self._queue.append(alert)
                self._cond.notify_all()
        if dropped is not None:
            self._on_result(self.name, dropped, "dropped")

    def contents(self) -> list[Alert]:
        """In-flight alert first, then the queue: everything not yet delivered."""
        with self._cond:
            head = [self._inflight] if self._inflight is not None else []
            return head + list(self._queue)

    def wait_idle(self, deadline: float) -> bool:
        """Block until queue and in-flight are empty or `deadline` (monotonic) passes."""
        with self._cond:
            while self._queue or self._inflight is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def stop(self, timeout_s: float) -> None:
        """Stop after the current attempt; what is left stays queued for `contents()`."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout_s)
        self.destination.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop.is_set():
                    self._cond.wait()
                if self._stop.is_set():
                    return
                self._inflight = self._queue.popleft()
            alert = self._inflight
            requeue = self._deliver(alert)
            with self._cond:
                if requeue:
                    self._queue.appendleft(alert)
                self._inflight = None
                self._cond.notify_all()

    def _deliver(self, alert: Alert) -> bool:
        """Send with retries; True means stopping interrupted a backoff and it must stay queued."""
        attempts = self._retry.max_attempts if alert.severity <= self._retry.retry_up_to else 1
        delay = self._retry.backoff_s
        for attempt in range(1, attempts + 1):
            try:
                self.destination.send(alert)
            except DeliveryError as exc:
                if exc.retryable and attempt < attempts:
                    wait = min(max(delay, exc.retry_after_s or 0.0), self._retry.max_backoff_s)
                    delay *= 2
                    if self._stop.wait(wait):
                        return True
                    continue
                self._fail(alert, f"{exc} (attempt {attempt}/{attempts})")
                return False
            except Exception as exc:  # a destination bug must not kill the channel thread
                self._fail(alert, f"{type(exc).__name__}: {exc}")
                return False
            self._on_result(self.name, alert, "sent")
            return False
        return False

    def _fail(self, alert: Alert, reason: str) -> None:
        log.warning("alert %s/%s to %s failed: %s", alert.severity.name, alert.kind, self.name,
                    self._masker(reason))
        self._on_result(self.name, alert, "failed")
