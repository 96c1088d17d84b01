"""What the coordinator tells the metrics endpoint and the alert dispatcher as its desk changes.

Reads the desk (domain objects) and turns what is new since the last call into metric updates
and alerts through Telemetry; the desk itself never learns about either.
"""
from __future__ import annotations

import time

from actors.telemetry import Telemetry


class DeskReporter:
    """Call `report(desk)` after the desk changed; it only looks at what is new since the last call.

    Alerts carry an `alert_id` (the dispatcher takes each id once). After a restart, `resume(desk)`:
    the restored history's alerts are sent again, since the dead coordinator may not have flushed
    them, but its counters are not counted again.
    """

    def __init__(self, telemetry: Telemetry):
        self.telemetry = telemetry
        self.started = time.time()
        self.round_trips = 0
        self.decisions = 0
        self.stuck = 0
        self.counted_decisions = self.counted_round_trips = 0   # already in the metric counters

    def resume(self, desk) -> None:
        """The desk was restored: its history is counted in the metrics already (by the predecessor)."""
        pf = desk.portfolio
        self.counted_decisions, self.counted_round_trips = len(pf.decisions), len(pf.round_trips)

    def report(self, desk) -> None:
        pf, t = desk.portfolio, self.telemetry
        for i, decision in enumerate(pf.decisions[self.decisions:], self.decisions):
            if not decision.allowed:
                if i >= self.counted_decisions:
                    t.inc("guard_triggers", guard=decision.guard)
                t.alert("P2", "guard", f"{decision.tier} guard {decision.guard} blocked {decision.intent_id}: "
                        f"{decision.detail}", symbol=decision.symbol, alert_id=f"guard:{decision.intent_id}")
        self.decisions = len(pf.decisions)
        new = pf.round_trips[self.round_trips:]
        if new:
            fresh = len(pf.round_trips) - max(self.round_trips, self.counted_round_trips)
            if fresh > 0:
                t.inc("round_trips", fresh)
            closed = pf.round_trips
            t.set("pnl_krw", sum(rt.pnl_krw for rt in closed))
            t.set("win_rate", sum(rt.pnl_krw > 0 for rt in closed) / len(closed))
            t.set("round_trips_per_hour", len(closed) / max((time.time() - self.started) / 3600, 1e-9))
            for rt in new:
                t.alert("P3", "round_trip", f"{rt.symbol} {rt.direction.value} closed ({rt.exit_reason}): "
                        f"{rt.pnl_krw:,.0f} KRW", symbol=rt.symbol, position_id=rt.position_id,
                        alert_id=f"round_trip:{rt.position_id}")
            self.round_trips = len(closed)
        for position_id in pf.stuck_legs[self.stuck:]:
            t.alert("P1", "stuck_leg", f"position {position_id}: one leg left open after the leg-risk policy",
                    alert_id=f"stuck_leg:{position_id}")
        self.stuck = len(pf.stuck_legs)
        t.set("open_positions", len(pf.open_positions()))
