"""Faults the simulator injects on command: HTTP errors, latency, stalls, gaps, bad frames, disconnects."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from sim.market import VENUES

KINDS = ("disconnect", "stall", "gap", "http_error", "latency", "malformed", "clock", "clear")


class BadFault(ValueError):
    """A fault command with an unknown kind or a missing/invalid field."""


@dataclass
class HttpFault:
    """Answer the next `count` requests (or a `fraction` of them) with `status`.

    `after` runs the request first and then answers the error: the order is placed but its reply
    is lost, the case a retrying client must not turn into a second order.
    """

    status: int
    count: int | None
    fraction: float | None
    retry_after_s: int
    after: bool = False


@dataclass
class VenueFaults:
    """Fault state of one venue."""

    http: HttpFault | None = None
    latency_ms: int = 0
    stalled_until: float = 0.0
    malformed_pending: int = 0


@dataclass
class Faults:
    """Fault state of the whole simulator; the server consults it on every request and frame."""

    venues: dict[str, VenueFaults] = field(default_factory=lambda: {v: VenueFaults() for v in VENUES})
    on_gap: Callable[[str, int], None] | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    clock_offset_ms: int = 0   # the simulator's clock runs this far ahead of the host's (all venues)

    def apply(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Apply one command, e.g. {"kind": "http_error", "venue": "binance", "status": 429, "count": 2}."""
        kind = cmd.get("kind")
        if kind not in KINDS:
            raise BadFault(f"fault: kind {kind!r} unknown; expected one of {KINDS}")
        venues = self._venues(cmd)
        if kind == "disconnect":  # the server closes the sockets; nothing to remember here
            return {"ok": True, "venues": venues}
        if kind == "clock":       # one clock for the whole simulator, like one exchange data centre
            self.clock_offset_ms = int(_number(cmd, "offset_ms", -86_400_000, 86_400_000))
            return {"ok": True, "venues": venues}
        for venue in venues:
            state = self.venues[venue]
            if kind == "clear":
                self.venues[venue] = VenueFaults()
            elif kind == "stall":
                state.stalled_until = time.monotonic() + _number(cmd, "seconds", 0, 3600)
            elif kind == "gap":
                if venue == "upbit":
                    raise BadFault("fault gap: Upbit sends whole books and has no sequence to break")
                if self.on_gap:
                    self.on_gap(venue, int(_number(cmd, "skip", 1, 1_000_000, default=1)))
            elif kind == "latency":
                state.latency_ms = int(_number(cmd, "ms", 0, 60_000))
            elif kind == "malformed":
                state.malformed_pending += int(_number(cmd, "count", 1, 1000, default=1))
            elif kind == "http_error":
                state.http = _http_fault(cmd)
        return {"ok": True, "venues": venues}

    def _venues(self, cmd: dict[str, Any]) -> list[str]:
        venue = cmd.get("venue")
        if venue is None:
            return list(VENUES)
        if venue not in VENUES:
            raise BadFault(f"fault {cmd.get('kind')}: venue {venue!r} unknown; expected one of {VENUES}")
        return [venue]

    def http_error(self, venue: str) -> HttpFault | None:
        """The error this request must get, if any (consumes one of `count`)."""
        fault = self.venues[venue].http
        if fault is None:
            return None
        if fault.count is not None:
            fault.count -= 1
            if fault.count <= 0:
                self.venues[venue].http = None
            return fault
        return fault if self.rng.random() < (fault.fraction or 0.0) else None

    def stalled(self, venue: str) -> float:
        """Seconds left in a stall of this venue's streams (0 when not stalled)."""
        return max(0.0, self.venues[venue].stalled_until - time.monotonic())

    def take_malformed(self, venue: str) -> bool:
        state = self.venues[venue]
        if state.malformed_pending > 0:
            state.malformed_pending -= 1
            return True
        return False


def _number(cmd: dict[str, Any], key: str, lo: float, hi: float, default: float | None = None) -> float:
    value = cmd.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo <= value <= hi:
        raise BadFault(f"fault {cmd.get('kind')}: {key}={value!r} must be a number in [{lo}, {hi}]")
    return float(value)


def _http_fault(cmd: dict[str, Any]) -> HttpFault:
    status = int(_number(cmd, "status", 400, 599, default=429))
    count = cmd.get("count")
    fraction = cmd.get("fraction")
    if (count is None) == (fraction is None):
        raise BadFault("fault http_error: give exactly one of count (next N requests) or fraction (0..1)")
    if count is not None:
        count = int(_number(cmd, "count", 1, 1_000_000))
    else:
        fraction = _number(cmd, "fraction", 0, 1)
    retry = int(_number(cmd, "retry_after_s", 0, 3600, default=1))
    after = cmd.get("after", False)
    if not isinstance(after, bool):
        raise BadFault(f"fault http_error: after={after!r} must be true or false")
    return HttpFault(status, count, fraction, retry, after)
