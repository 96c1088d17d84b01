"""A small realistic report input built from the recorded BTC candles on both venues."""
from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from domain.orders import Direction, RoundTrip

_FEE_SHARE = 2 * (0.0005 + 0.0010)  # four taker fees: Upbit KRW 0.05%, Binance spot 0.10%, entry and exit
_QTY = 0.01
_USDKRW = 1380.0


@dataclass(frozen=True)
class ReportInput:
    kpi: dict
    round_trips: list[RoundTrip]
    equity: list[tuple[int, float]]
    premium: dict[str, list[tuple[int, float]]]
    markers: list[dict]
    notes: list[str]


def _closes(path: Path) -> dict[int, float]:
    with path.open() as fh:
        return {
            int(datetime.strptime(r["timestamp_utc"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp() * 1000):
            float(r["close"])
            for r in csv.DictReader(fh)
        }


def _walk(premium: list[tuple[int, float]], upbit: dict[int, float]):
    """Enter 'Upbit rich' above the 85th percentile, exit below the 70th percentile or after 48 bars."""
    values = sorted(p for _, p in premium)
    enter, revert = values[int(len(values) * 0.85)], values[int(len(values) * 0.7)]
    trips, markers, equity, realised, open_at = [], [], [], 0.0, None
    for i, (ts, p) in enumerate(premium):
        if open_at is None and p >= enter:
            open_at = i
            markers.append({"symbol": "BTC", "ts_ms": ts, "premium": p, "kind": "entry",
                            "direction": "upbit_rich", "reason": "premium above p85"})
        elif open_at is not None and (p <= revert or i - open_at >= 48):
            ts0, p0 = premium[open_at]
            reason = "reverted" if p <= revert else "max_hold"
            notional = upbit[ts0] * _QTY
            fees = notional * _FEE_SHARE
            pnl = (p0 - p) * notional - fees
            realised += pnl
            trips.append(RoundTrip(
                position_id=f"pos-{len(trips)}", symbol="BTC", direction=Direction.RICH, entry_ts_ms=ts0,
                exit_ts_ms=ts, qty=_QTY, entry_premium=p0, exit_premium=p, exit_reason=reason, pnl_krw=pnl,
                pnl_usd=pnl / _USDKRW, fees_krw=fees, slippage_krw=0.0, funding_krw=0.0, fx_drift_krw=0.0,
                leg_risk_krw=0.0, krw_delta=f"{pnl:.0f}", usdt_delta="0",
            ))
            markers.append({"symbol": "BTC", "ts_ms": ts, "premium": p, "kind": "exit",
                            "direction": "upbit_rich", "reason": reason})
            open_at = None
        equity.append((ts, 100_000_000.0 + realised))
    return trips, markers, equity


@pytest.fixture(scope="session")
def report_input(data: Path) -> ReportInput:
    upbit = _closes(data / "btc" / "upbit_krw-btc_5m.csv")
    binance = _closes(data / "btc" / "binance_btcusdt_5m.csv")
    ratio = [(ts, upbit[ts] / binance[ts]) for ts in sorted(upbit.keys() & binance.keys())]
    centre = statistics.median(r for _, r in ratio)
    premium = [(ts, r / centre - 1.0) for ts, r in ratio]
    trips, markers, equity = _walk(premium, upbit)
    kpi = {"run_id": "fixture-1", "mode": "backtest", "round_trips": len(trips),
           "win_rate_pct": sum(t.win for t in trips) / len(trips) * 100, "pnl_krw": sum(t.pnl_krw for t in trips),
           "exit_reasons": {"reverted": sum(t.exit_reason == "reverted" for t in trips)}}
    notes = ["candle data: premium is the Upbit/Binance close ratio's deviation from its median (no FX series)"]
    return ReportInput(kpi, trips, equity, {"BTC": premium}, markers, notes)
