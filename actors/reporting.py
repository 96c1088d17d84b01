"""What the coordinator tells the metrics endpoint and the alert dispatcher as its desk changes.

Reads the desk (domain objects) and turns what is new since the last call into metric updates
and alerts through Telemetry; the desk itself never learns about either.
"""
from __future__ import annotations

import time

from actors.telemetry import Telemetry


class DeskReporter:
    """Call `report(desk)` after the desk changed; it only looks at what is new since the last call."""

    def __init__(self, telemetry: Telemetry):
        self.telemetry = telemetry
        self.started = time.time()
        self.round_trips = 0
        self.decisions = 0
        self.stuck = 0

    def report(self, desk) -> None:
        pf, t = desk.portfolio, self.telemetry
        for decision in pf.decisions[self.decisions:]:
            if not decision.allowed:
                t.inc("guard_triggers", guard=decision.guard)
                t.alert("P2", "guard", f"{decision.tier} guard {decision.guard} blocked {decision.intent_id}: "
                        f"{decision.detail}", symbol=decision.symbol)
        self.decisions = len(pf.decisions)
        new = pf.round_trips[self.round_trips:]
        if new:
            t.inc("round_trips", len(new))
            closed = pf.round_trips
            t.set("pnl_krw", sum(rt.pnl_krw for rt in closed))
            t.set("win_rate", sum(rt.pnl_krw > 0 for rt in closed) / len(closed))
            t.set("round_trips_per_hour", len(closed) / max((time.time() - self.started) / 3600, 1e-9))
            for rt in new:
                t.alert("P3", "round_trip", f"{rt.symbol} {rt.direction.value} closed ({rt.exit_reason}): "
                        f"{rt.pnl_krw:,.0f} KRW", symbol=rt.symbol)
            self.round_trips = len(closed)
        for position_id in pf.stuck_legs[self.stuck:]:
            t.alert("P1", "stuck_leg", f"position {position_id}: one leg left open after the leg-risk policy")
        self.stuck = len(pf.stuck_legs)
        t.set("open_positions", len(pf.open_positions()))
