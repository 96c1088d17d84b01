"""Pure alert routing: which channels get an alert, throttling per (kind, symbol), summaries.

No I/O and no clock of its own: every call takes `now_ms`, so tests drive it with a fake clock.
The log channel always receives every alert (it is the complete record); throttling only
protects the chat channels a person reads. P0 is never throttled.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from alerts.events import Alert, Severity

LOG_CHANNEL = "log"
CHAT_CHANNELS = frozenset({"telegram", "slack"})
SUMMARY_KIND = "alert_summary"


@dataclass(frozen=True, slots=True)
class RoutingTable:
    """Channels per severity. The log channel is part of every route."""

    routes: Mapping[Severity, frozenset[str]]

    def __post_init__(self) -> None:
        full = {sev: frozenset(self.routes.get(sev, ())) | {LOG_CHANNEL} for sev in Severity}
        object.__setattr__(self, "routes", full)

    def channels_for(self, severity: Severity) -> frozenset[str]:
        return self.routes[severity]

    @property
    def channels(self) -> frozenset[str]:
        """Every channel some severity routes to."""
        return frozenset().union(*self.routes.values())

    @classmethod
    def default(cls, channels: Iterable[str], p2_to_chat: bool = True) -> "RoutingTable":
        """P0/P1 to every channel, P2 to chat channels if `p2_to_chat`, P3 to the log only."""
        enabled = frozenset(channels) | {LOG_CHANNEL}
        chat = enabled & CHAT_CHANNELS if p2_to_chat else frozenset()
        return cls({Severity.P0: enabled, Severity.P1: enabled,
                    Severity.P2: chat, Severity.P3: frozenset()})

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Iterable[str]], channels: Iterable[str],
                     where: str = "alerts.routing") -> "RoutingTable":
        """Build from {"P0": ["telegram", ...], ...}; a severity left out goes to the log only."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: expected a mapping of severity -> channel list")
        enabled = frozenset(channels) | {LOG_CHANNEL}
        routes: dict[Severity, frozenset[str]] = {}
        for key, names in raw.items():
            sev = Severity.parse(key, f"{where} key")
            if isinstance(names, str) or not isinstance(names, Iterable):
                raise ValueError(f"{where}.{sev.name}: expected a list of channel names")
            for name in names:
                if name not in enabled:
                    raise ValueError(f"{where}.{sev.name}: unknown channel {name!r} "
                                     f"(configured: {', '.join(sorted(enabled))})")
            routes[sev] = frozenset(names)
        return cls(routes)


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """At most `max_per_window` alerts per (kind, symbol) reach the chat channels per window."""

    window_ms: int = 60_000
    max_per_window: int = 1

    def __post_init__(self) -> None:
        if self.window_ms <= 0:
            raise ValueError(f"alerts.throttle.window_ms must be > 0, got {self.window_ms}")
        if self.max_per_window < 1:
            raise ValueError(f"alerts.throttle.max_per_window must be >= 1, got {self.max_per_window}")


@dataclass(frozen=True, slots=True)
class Delivery:
    """An alert and the channels it must be sent to."""

    alert: Alert
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RouteResult:
    """What routing one alert produced: deliveries (summaries first) and the channels it was held from."""

    deliveries: tuple[Delivery, ...]
    throttled: tuple[str, ...] = ()


@dataclass(slots=True)
class _Window:
    """Running state of one (kind, symbol) throttle window."""

    start_ms: int
    sent: int = 0
    suppressed: int = 0
    worst: Severity = Severity.P3
    channels: set[str] = field(default_factory=set)
    last_source: str = ""


class AlertRouter:
    """Decides where each alert goes and folds throttled ones into one summary per window."""

    def __init__(self, table: RoutingTable, policy: ThrottlePolicy = ThrottlePolicy()) -> None:
        self.table = table
        self.policy = policy
        self._windows: dict[tuple[str, str | None], _Window] = {}

    def route(self, alert: Alert, now_ms: int) -> RouteResult:
        """Route one alert; summaries of windows that closed by `now_ms` come first."""
        deliveries = self.tick(now_ms)
        channels = self.table.channels_for(alert.severity)
        chat = channels - {LOG_CHANNEL}
        if alert.severity is Severity.P0 or not chat:
            deliveries.append(Delivery(alert, tuple(sorted(channels))))
            return RouteResult(tuple(deliveries))
        window = self._windows.setdefault(alert.throttle_key, _Window(start_ms=now_ms))
        if window.sent < self.policy.max_per_window:
            window.sent += 1
            deliveries.append(Delivery(alert, tuple(sorted(channels))))
            return RouteResult(tuple(deliveries))
        window.suppressed += 1
        window.worst = min(window.worst, alert.severity)
        window.channels |= chat
        window.last_source = alert.source
        held = tuple(sorted(chat))
        deliveries.append(Delivery(alert, (LOG_CHANNEL,)))
        return RouteResult(tuple(deliveries), throttled=held)

    def tick(self, now_ms: int) -> list[Delivery]:
        """Close windows older than the policy window; return a summary for each that held alerts."""
        closed = [key for key, w in self._windows.items()
                  if now_ms - w.start_ms >= self.policy.window_ms]
        return self._close(closed, now_ms)

    def flush(self, now_ms: int) -> list[Delivery]:
        """Close every window now (shutdown, snapshot): summaries for all held alerts."""
        return self._close(list(self._windows), now_ms)

    def held(self) -> int:
        """Alerts suppressed in windows that are still open."""
        return sum(w.suppressed for w in self._windows.values())

    def _close(self, keys: list[tuple[str, str | None]], now_ms: int) -> list[Delivery]:
        out = []
        for key in keys:
            window = self._windows.pop(key)
            if window.suppressed:
                out.append(self._summary(key, window, now_ms))
        return out

    def _summary(self, key: tuple[str, str | None], window: _Window, now_ms: int) -> Delivery:
        kind, symbol = key
        span_ms = min(max(now_ms - window.start_ms, 0), self.policy.window_ms)
        seconds = max(1, round(span_ms / 1000))
        noun = "alert" if window.suppressed == 1 else "alerts"
        where = f" for {symbol}" if symbol else ""
        alert = Alert(
            severity=window.worst, kind=SUMMARY_KIND, source=window.last_source,
            symbol=symbol, ts_ms=now_ms,
            message=f"{window.suppressed} more {kind} {noun}{where} in the last {seconds} s",
            fields={"summarized_kind": kind, "suppressed": window.suppressed,
                    "window_start_ms": window.start_ms, "window_s": seconds})
        return Delivery(alert, tuple(sorted(window.channels | {LOG_CHANNEL})))
