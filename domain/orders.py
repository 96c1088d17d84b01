"""The records a trade is made of: intents, orders, fills and round trips (frozen values)."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Side(str, Enum):
    BUY = "buy"
    SELL = "sell"


class Direction(str, Enum):
    """Which venue is rich. RICH: sell on Upbit, buy on Binance at entry; CHEAP: the mirror."""

    RICH = "upbit_rich"
    CHEAP = "upbit_cheap"


class Purpose(str, Enum):
    ENTRY = "entry"
    EXIT = "exit"
    UNWIND = "unwind"      # leg-risk: reverse the part of a leg the other leg did not match
    COMPLETE = "complete"  # leg-risk: retry the missing part of an exit leg


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """A strategy's wish to open or close a pair position, with the premium it saw and why."""

    intent_id: str
    symbol: str
    ts_ms: int
    purpose: Purpose
    direction: Direction
    qty: float
    premium: float        # executable premium at decision (fraction)
    reason: str           # entry signal or exit reason
    position_id: str


@dataclass(frozen=True, slots=True)
class Order:
    """One leg sent to one venue. `order_id` is the idempotent client order id."""

    order_id: str
    position_id: str
    venue: str
    symbol: str
    side: Side
    qty: float
    ts_ms: int            # decision time
    due_ms: int           # decision time + venue latency: when it meets the book
    purpose: Purpose
    ref_price: float      # best price at decision, for slippage
    limit_price: float | None = None  # None = market; else IOC, never walks past this price


@dataclass(frozen=True, slots=True)
class Fill:
    """What a venue gave for one order. A fill with qty 0 records a failed order."""

    fill_id: str
    order_id: str
    position_id: str
    venue: str
    symbol: str
    side: Side
    requested_qty: float
    qty: float
    price: float          # VWAP over the levels walked
    fee: float            # in the venue's quote currency
    ts_ms: int
    slippage_bps: float   # VWAP vs the best price at decision, adverse positive

    @property
    def notional(self) -> float:
        return self.price * self.qty

    @property
    def partial(self) -> bool:
        return 0 < self.qty < self.requested_qty - 1e-12


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """A closed pair position: entry and exit of both legs, with what it earned and why it ended."""

    position_id: str
    symbol: str
    direction: Direction
    entry_ts_ms: int
    exit_ts_ms: int
    qty: float
    entry_premium: float      # realised premium of the entry fills (fraction)
    exit_premium: float       # realised premium of the exit fills (fraction)
    exit_reason: str
    pnl_krw: float            # net of fees, slippage, funding, and leg-risk cost; USDT leg at exit FX
    pnl_usd: float
    fees_krw: float
    slippage_krw: float
    funding_krw: float
    fx_drift_krw: float       # part of pnl_krw due to the FX moving between entry and exit
    leg_risk_krw: float       # cost of unwinding or completing orphan legs
    krw_delta: str            # exact change of Upbit KRW over the round trip (Decimal as text)
    usdt_delta: str           # exact change of Binance USDT over the round trip (Decimal as text)

    @property
    def win(self) -> bool:
        return self.pnl_krw > 0
