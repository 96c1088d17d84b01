"""Fill model for backtest and paper: walk the L2 book for the order, round to the lot, apply fees.

Latency is applied by the caller: an order decided at t meets the book as of t + venue latency.
"""
from __future__ import annotations

from domain.book import Book, walk
from domain.orders import Fill, Order, Side
from domain.venues import VenueRules


def _within_limit(levels, limit: float | None, side: Side):
    if limit is None:
        return levels
    if side is Side.BUY:
        return tuple(lv for lv in levels if lv[0] <= limit)
    return tuple(lv for lv in levels if lv[0] >= limit)


def simulate_fill(order: Order, book: Book, rules: VenueRules, fill_id: str) -> Fill:
    """Taker fill of `order` against `book`: partial when depth runs out, zero when below minimums."""
    levels = book.asks if order.side is Side.BUY else book.bids
    levels = _within_limit(levels, order.limit_price, order.side)
    qty = rules.round_qty(order.qty)
    first = levels[0][0] if levels else 0.0
    if qty <= 0 or not levels or qty * first < rules.min_notional:
        return fill_for(order, fill_id, 0.0, 0.0, 0.0)
    w = walk(levels, qty)
    filled = rules.round_qty(w.qty)
    if filled < qty:  # depth ran out: re-walk the lot-rounded partial size
        w = walk(levels, filled)
    if filled <= 0 or w.notional < rules.min_notional:
        return fill_for(order, fill_id, 0.0, 0.0, 0.0)
    price = w.notional / filled
    return fill_for(order, fill_id, filled, price, w.notional * rules.taker_fee)


def fill_for(order: Order, fill_id: str, qty: float, price: float, fee: float) -> Fill:
    """The Fill of `order` for `qty` at VWAP `price` with `fee` (quote currency); slippage against the
    order's reference price. Paper builds it from a depth walk, live from the venue's report."""
    slip = 0.0
    if qty > 0 and order.ref_price > 0:
        ratio = price / order.ref_price
        slip = (ratio - 1.0) * 1e4 if order.side is Side.BUY else (1.0 - ratio) * 1e4
    return Fill(fill_id=fill_id, order_id=order.order_id, position_id=order.position_id,
                venue=order.venue, symbol=order.symbol, side=order.side,
                requested_qty=order.qty, qty=qty, price=price, fee=fee, ts_ms=order.due_ms,
                slippage_bps=slip)
