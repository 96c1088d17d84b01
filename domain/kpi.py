"""Trading KPIs from what a run produced: round trips, fills, the equity curve and guard decisions.

Every figure carries its unit in its name (_krw, _usd, _bps, _pct, _s, _ms). Pure: the runner
adds the run's wall-clock facts (ids, times, CPU, memory) beside these.
"""
from __future__ import annotations

import math
from collections import Counter

from domain.orders import Fill, Order, Purpose, RoundTrip
from domain.risk import Decision


def max_drawdown(equity: list[tuple[int, float]]) -> tuple[float, float]:
    """Largest peak-to-trough fall of the equity curve: (KRW, percent of the peak)."""
    peak, worst, worst_pct = -math.inf, 0.0, 0.0
    for _, value in equity:
        peak = max(peak, value)
        if peak - value > worst:
            worst, worst_pct = peak - value, (peak - value) / peak * 100 if peak > 0 else 0.0
    return worst, worst_pct


def drawdown_series(equity: list[tuple[int, float]]) -> list[tuple[int, float]]:
    peak, out = -math.inf, []
    for ts, value in equity:
        peak = max(peak, value)
        out.append((ts, value - peak))
    return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[k]


def trading_kpis(round_trips: list[RoundTrip], orders: list[Order], fills: list[Fill],
                 equity: list[tuple[int, float]], decisions: list[Decision], guard_triggers: dict[str, int],
                 failed_entries: int, open_positions: int, usd_rate: float) -> dict:
    """The trading half of the KPI file. `usd_rate` converts KRW to USD (KRW per USD)."""
    trades = [rt for rt in round_trips if rt.exit_reason != "failed_entry"]
    wins = sum(1 for rt in trades if rt.win)
    pnl = math.fsum(rt.pnl_krw for rt in round_trips)
    initial = equity[0][1] if equity else 0.0
    final = equity[-1][1] if equity else 0.0
    dd_krw, dd_pct = max_drawdown(equity)
    by_purpose = Counter(o.purpose for o in orders)
    filled = [f for f in fills if f.qty > 0]
    requested = math.fsum(f.requested_qty for f in fills)
    slip = [f.slippage_bps for f in filled]
    notional_weights = [f.notional for f in filled]
    slip_avg = (math.fsum(s * w for s, w in zip(slip, notional_weights)) / math.fsum(notional_weights)
                if filled else 0.0)
    return {
        "round_trips": len(trades),
        "entries": by_purpose[Purpose.ENTRY] // 2,
        "exits": by_purpose[Purpose.EXIT] // 2,
        "open_positions_at_end": open_positions,
        "failed_entries": failed_entries,
        "wins": wins,
        "losses": len(trades) - wins,
        "win_rate_pct": round(wins / len(trades) * 100, 4) if trades else 0.0,
        "pnl_krw": round(pnl, 2),
        "pnl_usd": round(pnl / usd_rate, 2) if usd_rate else None,
        "initial_equity_krw": round(initial, 2),
        "final_equity_krw": round(final, 2),
        "roi_pct": round((final - initial) / initial * 100, 6) if initial else 0.0,
        "exit_reasons": dict(sorted(Counter(rt.exit_reason for rt in round_trips).items())),
        "fees_paid_krw": round(math.fsum(rt.fees_krw for rt in round_trips), 2),
        "slippage_krw": round(math.fsum(rt.slippage_krw for rt in round_trips), 2),
        "slippage_bps_avg": round(slip_avg, 4),
        "slippage_bps_p99": round(percentile(slip, 99), 4),
        "leg_risk_cost_krw": round(math.fsum(rt.leg_risk_krw for rt in round_trips), 2),
        "funding_krw": round(math.fsum(rt.funding_krw for rt in round_trips), 2),
        "fx_drift_krw": round(math.fsum(rt.fx_drift_krw for rt in round_trips), 2),
        "orders_sent": len(orders),
        "fill_ratio_pct": round(math.fsum(f.qty for f in fills) / requested * 100, 4) if requested else 0.0,
        "partial_fills": sum(1 for f in fills if f.partial),
        "failed_fills": sum(1 for f in fills if f.qty == 0),
        "unwind_orders": by_purpose[Purpose.UNWIND],
        "complete_orders": by_purpose[Purpose.COMPLETE],
        "max_drawdown_krw": round(dd_krw, 2),
        "max_drawdown_pct": round(dd_pct, 6),
        "guard_decisions": len(decisions),
        "guard_blocks": sum(1 for d in decisions if not d.allowed),
        "guard_triggers": dict(sorted(guard_triggers.items())),
    }
