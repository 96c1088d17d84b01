"""Executable kimchi premium: what both books would actually give for a size, through USDT/KRW.

Premium P = upbit_price / (binance_price * usdt_krw) - 1, evaluated with depth-walk VWAPs:
- selling on Upbit and buying on Binance (Upbit rich):  P_sell = upbit_bid_vwap / (binance_ask_vwap * fx_ask) - 1
- buying on Upbit and selling on Binance (Upbit cheap): P_buy  = upbit_ask_vwap / (binance_bid_vwap * fx_bid) - 1
A RICH round trip earns about P_sell(entry) - P_buy(exit); a CHEAP one P_sell(exit) - P_buy(entry).
"""
from __future__ import annotations

from dataclasses import dataclass

from domain.book import Book, Walk, walk
from domain.orders import Direction


class NoFxRate(ValueError):
    """No USDT/KRW rate is available: the premium cannot be computed (never a silent default)."""


@dataclass(frozen=True, slots=True)
class FxQuote:
    """USDT/KRW: bid is what selling USDT gives, ask what buying USDT costs (KRW per USDT)."""

    bid: float
    ask: float
    source: str  # "book" (Upbit KRW-USDT) or "fixed"

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2


def fx_from_book(book: Book | None) -> FxQuote:
    if book is None or not book.bids or not book.asks:
        raise NoFxRate("no Upbit KRW-USDT book yet: the USDT/KRW rate is unknown")
    return FxQuote(book.best_bid, book.best_ask, "book")


def fx_fixed(rate: float) -> FxQuote:
    if not rate > 0:
        raise NoFxRate(f"fixed USDT/KRW rate must be positive, got {rate}")
    return FxQuote(rate, rate, "fixed")


@dataclass(frozen=True, slots=True)
class Quote:
    """A two-leg executable price for `qty` (what both books can fill, the smaller of the two)."""

    qty: float
    premium: float
    upbit: Walk
    binance: Walk
    fx: float

    @property
    def complete(self) -> bool:
        return self.qty > 0


NO_QUOTE = Quote(0.0, 0.0, walk((), 0), walk((), 0), 0.0)


def _quote(upbit_levels, binance_levels, fx: float, qty: float) -> Quote:
    up = walk(upbit_levels, qty)
    bn = walk(binance_levels, qty)
    filled = min(up.qty, bn.qty)
    if filled <= 0:
        return NO_QUOTE
    if filled < qty:  # both legs must be priced for the same size
        up, bn = walk(upbit_levels, filled), walk(binance_levels, filled)
    return Quote(filled, up.vwap / (bn.vwap * fx) - 1.0, up, bn, fx)


def sell_upbit(upbit: Book, binance: Book, fx: FxQuote, qty: float) -> Quote:
    """Sell on Upbit (walk its bids), buy on Binance (walk its asks): P_sell."""
    return _quote(upbit.bids, binance.asks, fx.ask, qty)


def buy_upbit(upbit: Book, binance: Book, fx: FxQuote, qty: float) -> Quote:
    """Buy on Upbit (walk its asks), sell on Binance (walk its bids): P_buy."""
    return _quote(upbit.asks, binance.bids, fx.bid, qty)


def entry_quote(direction: Direction, upbit: Book, binance: Book, fx: FxQuote, qty: float) -> Quote:
    return sell_upbit(upbit, binance, fx, qty) if direction is Direction.RICH else buy_upbit(upbit, binance, fx, qty)


def exit_quote(direction: Direction, upbit: Book, binance: Book, fx: FxQuote, qty: float) -> Quote:
    return buy_upbit(upbit, binance, fx, qty) if direction is Direction.RICH else sell_upbit(upbit, binance, fx, qty)


def edge(direction: Direction, premium: float, baseline: float) -> float:
    """How far a premium is stretched in the trade's favour: RICH profits when it is high."""
    return premium - baseline if direction is Direction.RICH else baseline - premium


def mid_premium(upbit: Book, binance: Book, fx: FxQuote) -> float:
    """Reference premium on mids (for charts and the z-score window; never for trading prices)."""
    return upbit.mid / (binance.mid * fx.mid) - 1.0
