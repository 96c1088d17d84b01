"""Domain records with realistic values for storage tests; each call can override any field."""
from __future__ import annotations

from domain.orders import Direction, Fill, Order, Purpose, RoundTrip, Side


def order(i: int = 0, **over) -> Order:
    values = dict(order_id=f"o-{i}", position_id=f"p-{i // 2}", venue="upbit", symbol="BTC",
                  side=Side.SELL, qty=0.0123, ts_ms=1_700_000_000_000 + i, due_ms=1_700_000_000_030 + i,
                  purpose=Purpose.ENTRY, ref_price=143_250_000.0)
    return Order(**{**values, **over})


def fill(i: int = 0, **over) -> Fill:
    values = dict(fill_id=f"f-{i}", order_id=f"o-{i}", position_id=f"p-{i // 2}", venue="binance",
                  symbol="BTC", side=Side.BUY, requested_qty=0.0123, qty=0.0120, price=97_012.35,
                  fee=1.1641482, ts_ms=1_700_000_000_030 + i, slippage_bps=1.75)
    return Fill(**{**values, **over})


def round_trip(i: int = 0, **over) -> RoundTrip:
    values = dict(position_id=f"p-{i}", symbol="ETH", direction=Direction.CHEAP,
                  entry_ts_ms=1_700_000_000_000, exit_ts_ms=1_700_000_360_000 + i, qty=1.5,
                  entry_premium=-0.0123, exit_premium=-0.0021, exit_reason="take_profit",
                  pnl_krw=41_250.5, pnl_usd=28.4, fees_krw=9_120.0, slippage_krw=1_300.25,
                  funding_krw=0.0, fx_drift_krw=-212.0, leg_risk_krw=0.0,
                  krw_delta="-6234567.1234", usdt_delta="4312.87654321")
    return RoundTrip(**{**values, **over})
