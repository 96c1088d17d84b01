"""Taker matching against the published book, with per-key balances and idempotent client order ids."""
from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

from domain.book import Book, Levels
from domain.venues import DEFAULT_FEES
from sim.journal import Journal

QUOTE = {"upbit": "KRW", "binance": "USDT", "binance_usdm": "USDT"}


class OrderRejected(Exception):
    """The venue refuses the order; `reason` is a stable id the protocol modules map to venue errors."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # duplicate | insufficient | no_book | bad_order | not_found | not_open


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a client asked for, after the protocol module decoded the venue's fields."""

    venue: str
    key: str
    symbol: str
    side: str                  # buy | sell
    type: str                  # market | limit
    qty: float | None          # base quantity (None: Upbit market buy by funds)
    price: float | None = None # limit price
    funds: float | None = None # quote to spend (Upbit market buy, Binance quoteOrderQty)
    tif: str = "GTC"           # GTC | IOC | FOK
    client_id: str | None = None
    reduce_only: bool = False


@dataclass(frozen=True, slots=True)
class SimOrder:
    """An order as the simulator holds it; replaced, never mutated, on each change."""

    request: OrderRequest
    order_id: str
    seq: int
    created_ms: int
    status: str = "open"               # open | filled | canceled (IOC/market remainder) | expired
    filled_qty: float = 0.0
    filled_quote: float = 0.0
    fee: float = 0.0
    fee_asset: str = ""
    fills: tuple[tuple[float, float], ...] = ()
    updated_ms: int = 0

    @property
    def remaining(self) -> float:
        return max((self.request.qty or 0.0) - self.filled_qty, 0.0)

    def as_accepted(self) -> "SimOrder":
        """The order as it stood when accepted, before matching: what Upbit and USDT-M answer a create
        with (the fills follow on the stream or a later query)."""
        return replace(self, status="open", filled_qty=0.0, filled_quote=0.0, fee=0.0, fills=(),
                       updated_ms=self.created_ms)


@dataclass
class Account:
    """Balances of one API key on one venue, plus USDT-M positions (coin -> signed qty, entry price)."""

    free: dict[str, float] = field(default_factory=dict)
    locked: dict[str, float] = field(default_factory=dict)
    positions: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FeeInAsset:
    """A venue that takes its fee in a third asset while the account holds enough of it (Binance's BNB
    fee discount): the fee's quote value, converted at `quote_price` quote per unit of `asset`."""

    asset: str
    quote_price: float


def walk_levels(levels: Levels, qty: float | None, funds: float | None, limit: float | None,
                side: str) -> tuple[tuple[float, float], ...]:
    """Fills (price, qty) from best level outward, stopping at qty, funds, or the limit price."""
    fills = []
    left_qty = qty if qty is not None else float("inf")
    left_funds = funds if funds is not None else float("inf")
    for price, size in levels:
        if limit is not None and (price > limit if side == "buy" else price < limit):
            break
        take = min(size, left_qty, left_funds / price)
        if take <= 0:
            break
        fills.append((price, take))
        left_qty -= take
        left_funds -= take * price
        if left_qty <= 1e-15 or left_funds <= 1e-12:
            break
    return tuple(fills)


class MatchingEngine:
    """One engine per simulator: accounts per (venue, key), orders, journal of every change."""

    def __init__(self, journal: Journal, clock_ms: Callable[[], int],
                 fees: dict[str, float] | None = None, fee_in: Mapping[str, FeeInAsset] | None = None) -> None:
        self.journal = journal
        self.clock_ms = clock_ms
        self.fees = fees or {v.value: f for v, f in DEFAULT_FEES.items()}
        self.fee_in = dict(fee_in or {})
        for venue, third in self.fee_in.items():
            if venue != "binance":
                raise ValueError(f"sim fee_in: venue {venue!r}: only Binance spot takes fees in a third asset here")
            if not third.quote_price > 0:
                raise ValueError(f"sim fee_in: {venue} {third.asset}: quote_price {third.quote_price!r} "
                                 f"must be positive")
        self.accounts: dict[tuple[str, str], Account] = {}
        self.orders: dict[tuple[str, str], SimOrder] = {}    # (venue, order_id) -> order
        self.client_ids: dict[tuple[str, str, str], str] = {}  # (venue, key, client_id) -> order_id
        self._seq = itertools.count(1)
        self.on_fill: Callable[[SimOrder, tuple[tuple[float, float], ...]], None] | None = None
        # order lifecycle for the private streams: (event, order after it, fills it brought)
        self.listeners: list[Callable[[str, SimOrder, tuple[tuple[float, float], ...]], None]] = []

    def account(self, venue: str, key: str) -> Account:
        return self.accounts.setdefault((venue, key), Account())

    def fund(self, venue: str, key: str, asset: str, amount: float) -> None:
        """Deposit (or withdraw, when negative) into a key's free balance."""
        self._change(venue, key, asset, amount, "deposit")

    def _change(self, venue: str, key: str, asset: str, delta: float, why: str, order_id: str = "") -> None:
        acct = self.account(venue, key)
        acct.free[asset] = acct.free.get(asset, 0.0) + delta
        self.journal.append("balance", venue=venue, key=key, asset=asset, delta=delta,
                            free=acct.free[asset], reason=why, order_id=order_id)

    def find(self, venue: str, key: str, order_id: str | None = None, client_id: str | None = None) -> SimOrder:
        if client_id is not None and order_id is None:
            order_id = self.client_ids.get((venue, key, client_id))
        order = self.orders.get((venue, order_id or ""))
        if order is None or order.request.key != key:
            raise OrderRejected("not_found", f"{venue}: order {order_id or client_id} not found for this key")
        return order

    def open_orders(self, venue: str, key: str, symbol: str | None = None) -> list[SimOrder]:
        return [o for (v, _), o in self.orders.items() if v == venue and o.request.key == key
                and o.status == "open" and (symbol is None or o.request.symbol == symbol)]

    def orders_of(self, venue: str, key: str) -> list[SimOrder]:
        return sorted((o for (v, _), o in self.orders.items() if v == venue and o.request.key == key),
                      key=lambda o: o.seq)

    def submit(self, req: OrderRequest, book: Book | None) -> SimOrder:
        """Accept, match and settle an order, or raise OrderRejected before any state changes."""
        try:
            self._check(req, book)
            levels = book.asks if req.side == "buy" else book.bids
            fills = walk_levels(levels, req.qty, req.funds, req.price if req.type == "limit" else None, req.side)
            if req.tif == "FOK" and sum(q for _, q in fills) + 1e-12 < (req.qty or 0):
                fills = ()
            self._check_funds(req, fills)
        except OrderRejected as err:
            if req.venue == "upbit" and req.client_id and err.reason != "duplicate":
                self.client_ids[(req.venue, req.key, req.client_id)] = ""  # spent, names no order
            raise
        seq = next(self._seq)
        order_id = str(uuid.uuid4()) if req.venue == "upbit" else str(seq)
        now = self.clock_ms()
        order = SimOrder(req, order_id, seq, now, updated_ms=now)
        self.orders[(req.venue, order_id)] = order
        if req.client_id:
            self.client_ids[(req.venue, req.key, req.client_id)] = order_id
        self.journal.append("order", event="new", venue=req.venue, key=req.key, order_id=order_id,
                            client_id=req.client_id, symbol=req.symbol, side=req.side, type=req.type,
                            qty=req.qty, price=req.price, funds=req.funds, tif=req.tif)
        order = self._settle(order, fills)
        rests = req.type == "limit" and req.tif == "GTC" and order.remaining > 1e-12
        status = "open" if rests else ("filled" if order.remaining <= 1e-12 and req.qty else "canceled")
        if req.qty is None:  # bought by funds: done when the money is spent or the book ran out
            status = "filled" if order.filled_quote >= (req.funds or 0) * (1 - 1e-9) else "canceled"
        if rests:
            self._lock(order, +1)
        order = replace(order, status=status)
        self.orders[(req.venue, order_id)] = order
        self.journal.append("order", event=status, venue=req.venue, key=req.key, order_id=order_id,
                            filled_qty=order.filled_qty, filled_quote=order.filled_quote, fee=order.fee)
        self._emit("new", order, order.fills)
        return order

    def cancel(self, venue: str, key: str, order_id: str | None, client_id: str | None = None) -> SimOrder:
        order = self.find(venue, key, order_id, client_id)
        if order.status != "open":
            raise OrderRejected("not_open", f"{venue}: order {order.order_id} is {order.status}, not open")
        self._lock(order, -1)
        order = replace(order, status="canceled", updated_ms=self.clock_ms())
        self.orders[(venue, order.order_id)] = order
        self.journal.append("order", event="canceled", venue=venue, key=key, order_id=order.order_id)
        self._emit("canceled", order, ())
        return order

    def match_resting(self, book: Book) -> list[SimOrder]:
        """Fill open limit orders that the new book crosses (at book prices, taker fee)."""
        done = []
        resting = [o for (v, _), o in list(self.orders.items())
                   if v == book.venue and o.status == "open" and o.request.symbol == book.symbol]
        for order in resting:
            req = order.request
            fills = walk_levels(book.asks if req.side == "buy" else book.bids, order.remaining, None,
                                req.price, req.side)
            if not fills:
                continue
            self._lock(order, -1)
            order = self._settle(order, fills)
            status = "filled" if order.remaining <= 1e-12 else "open"
            order = replace(order, status=status)
            if status == "open":
                self._lock(order, +1)
            self.orders[(book.venue, order.order_id)] = order
            self.journal.append("order", event="fill", venue=book.venue, key=req.key, order_id=order.order_id,
                                filled_qty=order.filled_qty, status=status)
            self._emit("matched", order, fills)
            done.append(order)
        return done

    def _emit(self, event: str, order: SimOrder, fills: tuple[tuple[float, float], ...]) -> None:
        """new: accepted (with the fills taken at once); matched: a resting order filled; canceled."""
        for listener in list(self.listeners):
            listener(event, order, fills)

    def _check(self, req: OrderRequest, book: Book | None) -> None:
        if req.client_id and self._duplicate(req):
            raise OrderRejected("duplicate", f"{req.venue}: client order id {req.client_id!r} already used")
        if book is None or not (book.bids and book.asks):
            raise OrderRejected("no_book", f"{req.venue} {req.symbol}: no book published yet")
        if req.side not in ("buy", "sell") or req.type not in ("market", "limit"):
            raise OrderRejected("bad_order", f"{req.venue}: side {req.side!r} / type {req.type!r} not supported")
        if req.qty is None and req.funds is None:
            raise OrderRejected("bad_order", f"{req.venue}: order needs a quantity or funds")
        for name, value in (("quantity", req.qty), ("price", req.price), ("funds", req.funds)):
            if value is not None and not value > 0:
                raise OrderRejected("bad_order", f"{req.venue}: {name} {value} must be positive")
        if req.type == "limit" and req.price is None:
            raise OrderRejected("bad_order", f"{req.venue}: limit order without a price")

    def _duplicate(self, req: OrderRequest) -> bool:
        """Whether the venue refuses this client order id, the way each venue does.

        Upbit: an identifier is unique over the account's whole history, and one sent with a request
        that failed is spent too. Binance (spot and USDT-M): unique among *open* orders only, so an
        id whose order has filled or expired is accepted again and makes a second order.
        """
        existing = self.client_ids.get((req.venue, req.key, req.client_id))
        if existing is None:
            return False
        if req.venue == "upbit":
            return True
        order = self.orders.get((req.venue, existing))
        return order is not None and order.status == "open"

    def _check_funds(self, req: OrderRequest, fills: tuple[tuple[float, float], ...]) -> None:
        acct = self.account(req.venue, req.key)
        quote, base = QUOTE[req.venue], req.symbol
        fee = self.fees[req.venue]
        cost = sum(p * q for p, q in fills)
        if req.type == "limit" and req.tif == "GTC" and req.qty:
            cost = max(cost, req.qty * req.price) if req.side == "buy" else cost
        if req.venue == "binance_usdm":
            need, asset = cost * fee + (cost if not req.reduce_only else 0.0), quote
        elif req.side == "buy":
            need, asset = cost * (1 + fee if req.venue == "upbit" else 1), quote
        else:
            need, asset = (req.qty or 0.0), base
        if acct.free.get(asset, 0.0) + 1e-9 < need:
            raise OrderRejected("insufficient", f"{req.venue}: {asset} free {acct.free.get(asset, 0.0)} < needed {need}")

    def _settle(self, order: SimOrder, fills: tuple[tuple[float, float], ...]) -> SimOrder:
        if not fills:
            return order
        req = order.request
        qty = sum(q for _, q in fills)
        quote_amt = sum(p * q for p, q in fills)
        fee_rate = self.fees[req.venue]
        quote, base = QUOTE[req.venue], req.symbol
        oid = order.order_id
        if req.venue == "binance_usdm":
            fee, fee_asset = quote_amt * fee_rate, quote
            self._position(req, qty, quote_amt, fee)
        elif req.venue == "upbit":
            fee, fee_asset = quote_amt * fee_rate, quote
            sign = 1 if req.side == "buy" else -1
            self._change(req.venue, req.key, base, sign * qty, "fill", oid)
            self._change(req.venue, req.key, quote, -sign * quote_amt - fee, "fill", oid)
        elif (third := self._fee_in_third_asset(req, quote_amt * fee_rate)) is not None:
            fee, fee_asset = third
            sign = 1 if req.side == "buy" else -1   # the trade itself settles in full
            self._change(req.venue, req.key, base, sign * qty, "fill", oid)
            self._change(req.venue, req.key, quote, -sign * quote_amt, "fill", oid)
            self._change(req.venue, req.key, fee_asset, -fee, "fee", oid)
        elif req.side == "buy":  # Binance spot takes the fee from what you receive
            fee, fee_asset = qty * fee_rate, base
            self._change(req.venue, req.key, base, qty - fee, "fill", oid)
            self._change(req.venue, req.key, quote, -quote_amt, "fill", oid)
        else:
            fee, fee_asset = quote_amt * fee_rate, quote
            self._change(req.venue, req.key, base, -qty, "fill", oid)
            self._change(req.venue, req.key, quote, quote_amt - fee, "fill", oid)
        if self.on_fill:
            self.on_fill(order, fills)
        return replace(order, filled_qty=order.filled_qty + qty, filled_quote=order.filled_quote + quote_amt,
                       fee=order.fee + fee, fee_asset=fee_asset, fills=order.fills + fills,
                       updated_ms=self.clock_ms())

    def _fee_in_third_asset(self, req: OrderRequest, quote_fee: float) -> tuple[float, str] | None:
        """(fee, asset) when the venue takes this fee in a third asset the account holds enough of."""
        third = self.fee_in.get(req.venue)
        if third is None:
            return None
        fee = quote_fee / third.quote_price
        return (fee, third.asset) if self.account(req.venue, req.key).free.get(third.asset, 0.0) >= fee else None

    def _position(self, req: OrderRequest, qty: float, quote_amt: float, fee: float) -> None:
        """USDT-M: move the signed position; realise PnL on the part that reduces it."""
        acct = self.account(req.venue, req.key)
        pos, entry = acct.positions.get(req.symbol, (0.0, 0.0))
        signed = qty if req.side == "buy" else -qty
        price = quote_amt / qty
        realised = 0.0
        if pos and (pos > 0) != (signed > 0):
            closing = min(abs(pos), abs(signed))
            realised = closing * (price - entry) * (1 if pos > 0 else -1)
        new = pos + signed
        if abs(new) < 1e-12:
            new, entry = 0.0, 0.0
        elif pos == 0 or (pos > 0) != (new > 0):
            entry = price
        elif (pos > 0) == (signed > 0):
            entry = (abs(pos) * entry + abs(signed) * price) / abs(new)
        acct.positions[req.symbol] = (new, entry)
        self.journal.append("position", venue=req.venue, key=req.key, symbol=req.symbol, qty=new, entry=entry)
        self._change(req.venue, req.key, QUOTE[req.venue], realised - fee, "fill")

    def _lock(self, order: SimOrder, sign: int) -> None:
        """Move what a resting order may spend between free and locked."""
        req = order.request
        if req.venue == "binance_usdm":
            return
        acct = self.account(req.venue, req.key)
        if req.side == "buy":
            fee = self.fees[req.venue] if req.venue == "upbit" else 0.0
            asset, amount = QUOTE[req.venue], order.remaining * req.price * (1 + fee)
        else:
            asset, amount = req.symbol, order.remaining
        acct.free[asset] = acct.free.get(asset, 0.0) - sign * amount
        acct.locked[asset] = acct.locked.get(asset, 0.0) + sign * amount
        self.journal.append("balance", venue=req.venue, key=req.key, asset=asset, delta=-sign * amount,
                            free=acct.free[asset], reason="lock" if sign > 0 else "unlock", order_id=order.order_id)
