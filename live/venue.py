"""One venue through ccxt (async_support or pro): idempotent limit-IOC and market orders, cancels,
balances, open orders, USDT-M positions and funding; the venue's rules checked before sending;
HTTP 429 backs off (exponential, capped, Retry-After honoured) and is counted.

Orders are never resent blindly. After a send whose outcome is unknown (timeout, 5xx, a reply lost
on the way back) the venue is asked for our client order id first, and only an order it never saw
is sent again, under the same id. Binance takes a client id again once its order is done, so this
lookup, not the venue, is what keeps a retry from making a second order.

Ray: whatever calls `place` must not be retried by Ray (actors: max_task_retries=0, the default;
tasks: max_retries=0): a Ray retry is a new send that this module cannot tell from the first.
"""
from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ccxt

from domain.orders import Side
from domain.venues import Venue, VenueRules
from live.backoff import Backoff
from live.errors import OrderRejected, OrderRuleError, VenueAuthError, VenueError, VenueUnavailable
from live.redact import redact
from live.order_stream import OrderStream

CLIENT_ID = re.compile(r"^[.A-Za-z0-9:/_-]{1,36}$")  # Binance's rule; Upbit takes it as well
FINAL = frozenset({"closed", "canceled", "expired", "rejected"})
RATE_LIMITED = (ccxt.RateLimitExceeded, ccxt.DDoSProtection)  # ccxt: Upbit 429 -> the first, Binance -> the second
KINDS = ("limit_ioc", "market")


def ccxt_symbol(venue: Venue, coin: str) -> str:
    """The ccxt market symbol of `coin` on `venue` (BTC/KRW, BTC/USDT, BTC/USDT:USDT)."""
    if venue is Venue.UPBIT:
        return f"{coin}/KRW"
    return f"{coin}/USDT" if venue is Venue.BINANCE else f"{coin}/USDT:USDT"


def client_order_id(run_tag: str, order_id: str) -> str:
    """Our order id as a venue client id: the same for every retry and restart of one run, never
    reused by another run (Upbit refuses an identifier forever, even one a rejected request spent)."""
    tag = hashlib.sha256(run_tag.encode()).hexdigest()[:8]
    cid = f"{tag}-{order_id}"
    return cid if CLIENT_ID.match(cid) else f"{tag}-h{hashlib.sha256(order_id.encode()).hexdigest()[:26]}"


@dataclass(frozen=True, slots=True)
class PlaceRequest:
    """One order to send. `price` is the limit (limit_ioc) or the reference price (market)."""

    order_id: str            # ours (domain Order.order_id); the client id is derived from it
    coin: str
    side: Side
    qty: float
    price: float
    kind: str = "limit_ioc"  # limit_ioc | market
    reduce_only: bool = False  # USDT-M only: may only shrink the position


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """The venue's word on one order, in our units; fees converted to the venue's quote currency."""

    venue: str
    client_id: str
    order_id: str
    coin: str
    side: Side
    status: str              # open | closed | canceled | expired | rejected
    amount: float
    filled: float
    average: float           # VWAP of the fills, 0 when none
    fee_quote: float         # every fee in KRW or USDT (a fee taken in the coin converted at `average`)
    fee_coin: float = 0.0    # the part of the fee the venue took in the coin (Binance spot buys)
    fee_other: tuple[tuple[str, float], ...] = ()  # fees in a third asset (BNB), not converted
    ts_ms: int = 0

    @property
    def final(self) -> bool:
        return self.status in FINAL


@dataclass(frozen=True, slots=True)
class Balance:
    free: float
    used: float
    total: float


@dataclass(frozen=True, slots=True)
class FundingQuote:
    """USDT-M funding: the rate the next settlement charges (shorts receive a positive rate)."""

    rate: float
    mark_price: float
    next_ms: int


@dataclass(slots=True)
class VenueStats:
    """Counters a venue's health guard and the KPIs read."""

    requests: int = 0
    orders_sent: int = 0
    rate_limited: int = 0    # 429/418 answers
    failures: int = 0        # timeouts, 5xx, refused connections
    retries: int = 0
    recovered: int = 0       # sends whose lost reply the client-id lookup found

    def to_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}


def check_order_rules(venue: str, rules: VenueRules, req: PlaceRequest) -> None:
    """Raise OrderRuleError naming the rule, before anything is sent."""
    where = f"{req.side.value} {req.qty:g} {req.coin} ({req.order_id})"
    if req.kind not in KINDS:
        raise OrderRuleError(venue, f"{where}: order kind {req.kind!r} unknown; expected one of {KINDS}")
    if not (isinstance(req.qty, (int, float)) and math.isfinite(req.qty) and req.qty > 0):
        raise OrderRuleError(venue, f"{where}: quantity must be a positive number")
    if not (isinstance(req.price, (int, float)) and math.isfinite(req.price) and req.price > 0):
        raise OrderRuleError(venue, f"{where}: price {req.price!r} must be a positive number")
    if req.reduce_only and venue != Venue.BINANCE_USDM.value:
        raise OrderRuleError(venue, f"{where}: reduce-only exists on binance_usdm only")
    lots = req.qty / rules.lot_size
    if abs(lots - round(lots)) > 1e-6:
        raise OrderRuleError(venue, f"{where}: quantity is not a multiple of the lot size {rules.lot_size:g}")
    tick = rules.tick_at(req.price)
    if req.kind == "limit_ioc" and abs(req.price / tick - round(req.price / tick)) > 1e-6:
        raise OrderRuleError(venue, f"{where}: limit price {req.price:g} is not on the tick {tick:g}")
    notional = req.qty * req.price
    if notional < rules.min_notional and not req.reduce_only:
        raise OrderRuleError(venue, f"{where}: notional {notional:,.8g} is below the minimum "
                                    f"{rules.min_notional:g} {Venue(venue).quote}")


def protective_price(rules: VenueRules, ref: float, side: Side, band_bps: float) -> float:
    """A limit `band_bps` beyond the reference price, on the tick, never inside the reference."""
    raw = ref * (1 + band_bps / 1e4) if side is Side.BUY else ref * (1 - band_bps / 1e4)
    price = rules.round_price(raw, side.value)
    tick = rules.tick_at(ref)
    if side is Side.BUY and price < ref:
        price = round(math.ceil(ref / tick - 1e-9) * tick, 10)
    if side is Side.SELL and price > ref:
        price = round(math.floor(ref / tick + 1e-9) * tick, 10)
    return price


def _duplicate(exc: Exception) -> bool:
    return isinstance(exc, ccxt.DuplicateOrderId) or "uplicat" in str(exc)


class LiveVenue:
    """Orders and account reads on one venue; `rules(coin)` gives the VenueRules orders must meet."""

    def __init__(self, venue: Venue, exchange: Any, rules: Callable[[str], VenueRules], run_tag: str,
                 backoff: Backoff | None = None, settle_timeout_s: float = 10.0,
                 stream: OrderStream | None = None) -> None:
        if not run_tag:
            raise ValueError("LiveVenue: run_tag must name the run (client ids are made unique by it)")
        self.venue, self.exchange, self.rules, self.run_tag = venue, exchange, rules, run_tag
        self.name = venue.value
        self.backoff = backoff or Backoff()
        self.settle_timeout_s = settle_timeout_s
        self.stream = stream
        self.stats = VenueStats()

    # ---- ids and symbols ----
    def symbol(self, coin: str) -> str:
        return ccxt_symbol(self.venue, coin)

    def coin_of(self, symbol: str) -> str:
        return str(symbol).split("/", 1)[0]

    def client_id(self, order_id: str) -> str:
        return client_order_id(self.run_tag, order_id)

    async def start(self) -> None:
        """Load the venue's markets (and start the order stream when one is attached)."""
        await self._call("load_markets", self.exchange.load_markets)
        if self.stream is not None:
            self.stream.start()

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.stop()
        await self.exchange.close()

    # ---- the one retry loop for reads and cancels ----
    def _retry_after(self) -> float | None:
        headers = getattr(self.exchange, "last_response_headers", None) or {}
        raw = headers.get("Retry-After") or headers.get("retry-after")
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            return None

    async def _pause(self, retry: int) -> None:
        self.stats.retries += 1
        await asyncio.sleep(self.backoff.delay(retry, self._retry_after()))

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Call ccxt, retrying 429s and network failures with backoff; other venue errors pass through."""
        retry = 0
        while True:
            self.stats.requests += 1
            try:
                return await fn(*args)
            except ccxt.AuthenticationError as exc:
                raise VenueAuthError(self.name, f"{what}: {redact(exc)}") from None
            except RATE_LIMITED as exc:             # 429 / 418
                self.stats.rate_limited += 1
                last = exc
            except ccxt.NetworkError as exc:        # 5xx, timeouts, refused connections, clock skew
                self.stats.failures += 1
                last = exc
            retry += 1
            if retry >= self.backoff.attempts:
                raise VenueUnavailable(self.name, f"{what}: failed {retry} times, last {redact(last)}") from None
            await self._pause(retry)

    # ---- orders ----
    async def place(self, req: PlaceRequest) -> VenueOrder:
        """Send one order (idempotent by client id) and wait until the venue says it is done.

        Raises OrderRuleError before sending, OrderRejected when the venue refuses it, and
        VenueUnavailable when the venue cannot be reached; in that last case the order's fate is
        unknown and `lookup` must settle it later.
        """
        check_order_rules(self.name, self.rules(req.coin), req)
        cid = self.client_id(req.order_id)
        symbol = self.symbol(req.coin)
        args = self._order_args(req, cid)
        if self.stream is not None:
            self.stream.expect(cid)
        try:
            return await self._send(req, cid, symbol, args)
        finally:
            if self.stream is not None:
                self.stream.forget(cid)

    async def _send(self, req: PlaceRequest, cid: str, symbol: str, args: tuple[Any, ...]) -> VenueOrder:
        retry, last = 0, None
        while True:
            self.stats.requests += 1
            self.stats.orders_sent += 1
            try:
                raw = await self.exchange.create_order(symbol, *args)
                order = self._parse(raw, req.coin, cid)
                break
            except ccxt.AuthenticationError as exc:
                raise VenueAuthError(self.name, f"order {cid}: {redact(exc)}") from None
            except RATE_LIMITED as exc:             # refused before it was processed: safe to resend
                self.stats.rate_limited += 1
                last = exc
            except ccxt.NetworkError as exc:        # outcome unknown: ask before sending again
                self.stats.failures += 1
                last = exc
                found = await self.lookup(req.coin, cid)
                if found is not None:
                    self.stats.recovered += 1
                    order = found
                    break
            except ccxt.ExchangeError as exc:
                if not _duplicate(exc):
                    raise OrderRejected(self.name, f"{req.side.value} {req.qty:g} {symbol} ({cid}): "
                                                   f"{type(exc).__name__}: {redact(exc)}") from None
                found = await self.lookup(req.coin, cid)   # an earlier attempt of ours got through
                if found is None:
                    raise OrderRejected(self.name, f"client id {cid} was spent by a request the venue "
                                                   f"refused; nothing was placed") from None
                self.stats.recovered += 1
                order = found
                break
            retry += 1
            if retry >= self.backoff.attempts:
                raise VenueUnavailable(self.name, f"order {cid} not confirmed after {retry} attempts "
                                                  f"(last {redact(last)}); its fate is unknown until looked up")
            await self._pause(retry)
        return await self._complete(order)

    def _order_args(self, req: PlaceRequest, cid: str) -> tuple[Any, ...]:
        params: dict[str, Any] = {"clientOrderId": cid}
        if req.reduce_only:
            params["reduceOnly"] = True
        if req.kind == "limit_ioc":
            params["timeInForce"] = "IOC"
            return "limit", req.side.value, req.qty, req.price, params
        # Upbit buys at market by funds: ccxt spends qty * price of KRW (price = the reference).
        price = req.price if self.venue is Venue.UPBIT and req.side is Side.BUY else None
        return "market", req.side.value, req.qty, price, params

    async def lookup(self, coin: str, client_id: str) -> VenueOrder | None:
        """The order the venue holds under `client_id`, settled; None when it never saw one."""
        try:
            if self.venue is Venue.UPBIT:
                raw = self.exchange.parse_order(
                    await self._call("lookup", self.exchange.private_get_order, {"identifier": client_id}))
            else:
                raw = await self._call("lookup", self.exchange.fetch_order, None, self.symbol(coin),
                                       {"origClientOrderId": client_id})
        except ccxt.OrderNotFound:
            return None
        except ccxt.ExchangeError as exc:
            raise VenueError(self.name, f"lookup {client_id}: {type(exc).__name__}: {redact(exc)}") from None
        order = self._parse(raw, coin, client_id)
        return await self._with_fees(order) if order.final else order

    async def _fetch(self, order: VenueOrder) -> VenueOrder:
        try:
            raw = await self._call("fetch_order", self.exchange.fetch_order, order.order_id, self.symbol(order.coin))
        except ccxt.ExchangeError as exc:
            raise VenueError(self.name, f"fetch order {order.client_id}: {type(exc).__name__}: {redact(exc)}") from None
        return self._parse(raw, order.coin, order.client_id)

    async def _complete(self, order: VenueOrder) -> VenueOrder:
        """Wait (stream first, polling as fallback) until the order is done, then price its fees."""
        deadline = time.monotonic() + self.settle_timeout_s
        delay = 0.02
        while not order.final:
            if time.monotonic() > deadline:   # an IOC that hangs: take it off the book ourselves
                return await self.cancel(order.coin, order.order_id, order.client_id)
            if self.stream is not None and self.stream.healthy:
                # the stream wakes us when the order is done; the REST read below is the safety net
                await self.stream.wait(order.client_id, min(1.0, max(deadline - time.monotonic(), 0.0)))
            else:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
            order = await self._fetch(order)
        return await self._with_fees(order)

    async def cancel(self, coin: str, order_id: str, client_id: str = "") -> VenueOrder:
        """Cancel one order and return its final state with the fees of what it filled (an order already
        done is returned as is): Binance's order query carries no fee, its trades do."""
        try:
            await self._call("cancel", self.exchange.cancel_order, order_id, self.symbol(coin))
        except ccxt.ExchangeError:
            pass   # "unknown / not open": a lost reply of ours or already done; the fetch below tells
        order = await self._fetch(VenueOrder(self.name, client_id, order_id, coin, Side.BUY, "open", 0, 0, 0, 0))
        if not order.final:
            raise VenueError(self.name, f"cancel {order_id}: the order is still open after the cancel")
        return await self._with_fees(order)

    # ---- parsing at the edge ----
    def _parse(self, raw: dict, coin: str, client_id: str) -> VenueOrder:
        filled = float(raw.get("filled") or 0.0)
        cost = float(raw.get("cost") or 0.0)
        info = raw.get("info") or {}
        if self.venue is Venue.UPBIT and info.get("executed_funds") is not None:
            cost = float(info["executed_funds"])   # ccxt's upbit `cost` is limit price x filled, not the funds
        # cost / filled is the VWAP every venue reports; ccxt's `average` falls back to the limit price
        average = cost / filled if cost and filled else float(raw.get("average") or 0.0) if filled else 0.0
        fee_quote, fee_coin, other = self._fees(raw.get("fees") or ([raw["fee"]] if raw.get("fee") else []),
                                                coin, average)
        status = raw.get("status") or "open"
        return VenueOrder(self.name, raw.get("clientOrderId") or client_id, str(raw.get("id")), coin,
                          Side(raw.get("side") or "buy"), status, float(raw.get("amount") or filled),
                          filled, average, fee_quote, fee_coin, other,
                          int(raw.get("lastTradeTimestamp") or raw.get("timestamp") or time.time() * 1000))

    def _fees(self, fees: list, coin: str, price: float) -> tuple[float, float, tuple[tuple[str, float], ...]]:
        quote, coin_fee, other = 0.0, 0.0, {}
        for fee in fees:
            if not fee or fee.get("cost") is None or fee.get("currency") is None:
                continue
            cost, currency = float(fee["cost"]), fee["currency"]
            if currency == self.venue.quote:
                quote += cost
            elif currency == coin:
                coin_fee += cost
                quote += cost * price
            else:
                other[currency] = other.get(currency, 0.0) + cost
        return quote, coin_fee, tuple(sorted(other.items()))

    async def _with_fees(self, order: VenueOrder) -> VenueOrder:
        """Fill in fees and VWAP from the venue's trade list when the order reply did not carry them."""
        if not order.filled or order.fee_quote or order.fee_other:
            return order
        if self.venue is Venue.UPBIT:   # GET /v1/order carries paid_fee and the trades
            return await self._fetch(order)
        try:
            trades = await self._call("fetch_my_trades", self.exchange.fetch_my_trades, self.symbol(order.coin),
                                      None, None, {"orderId": order.order_id})
        except ccxt.ExchangeError as exc:   # a VenueError, which lookup's and cancel's callers handle
            raise VenueError(self.name, f"trades of order {order.client_id or order.order_id}: "
                                        f"{type(exc).__name__}: {redact(exc)}") from None
        qty = sum(float(t["amount"]) for t in trades)
        if qty <= 0:
            return order
        average = sum(float(t["price"]) * float(t["amount"]) for t in trades) / qty
        fee_quote, fee_coin, other = self._fees([t.get("fee") for t in trades], order.coin, average)
        return VenueOrder(order.venue, order.client_id, order.order_id, order.coin, order.side, order.status,
                          order.amount, order.filled, average, fee_quote, fee_coin, other, order.ts_ms)

    # ---- account ----
    async def best_prices(self, coin: str) -> tuple[float, float]:
        """(best bid, best ask) from the venue's order book now."""
        book = await self._call("fetch_order_book", self.exchange.fetch_order_book, self.symbol(coin), 5)
        if not book.get("bids") or not book.get("asks"):
            raise VenueError(self.name, f"order book of {self.symbol(coin)} is empty on one side")
        return float(book["bids"][0][0]), float(book["asks"][0][0])

    async def _read(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """An account read (open orders, balances, positions): any other venue error becomes a VenueError,
        which reconcile and the kill switch take per venue; a raw ccxt error ended a whole reconcile."""
        try:
            return await self._call(what, fn, *args)
        except ccxt.BaseError as exc:
            raise VenueError(self.name, f"{what}: {redact(exc)}") from None

    async def open_orders(self, coin: str | None = None) -> list[VenueOrder]:
        raw = await self._read("fetch_open_orders", self.exchange.fetch_open_orders,
                               self.symbol(coin) if coin else None)
        return [self._parse(o, self.coin_of(o.get("symbol", "")), o.get("clientOrderId") or "") for o in raw]

    async def balances(self) -> dict[str, Balance]:
        raw = await self._read("fetch_balance", self.exchange.fetch_balance)
        return {asset: Balance(float(v.get("free") or 0.0), float(v.get("used") or 0.0), float(v.get("total") or 0.0))
                for asset, v in raw.items() if isinstance(v, dict) and asset not in ("free", "used", "total", "info")}

    async def positions(self) -> dict[str, float]:
        """USDT-M: coin -> signed contracts (short < 0) of every open position."""
        self._require_usdm("positions")
        out: dict[str, float] = {}
        for p in await self._read("fetch_positions", self.exchange.fetch_positions):
            contracts = float(p.get("contracts") or 0.0)
            if contracts:
                out[self.coin_of(p["symbol"])] = -contracts if p.get("side") == "short" else contracts
        return out

    async def funding(self, coin: str) -> FundingQuote:
        """USDT-M: the funding rate and mark price the next settlement uses."""
        self._require_usdm("funding")
        raw = await self._call("fetch_funding_rate", self.exchange.fetch_funding_rate, self.symbol(coin))
        return FundingQuote(float(raw["fundingRate"]), float(raw["markPrice"]), int(raw.get("fundingTimestamp") or 0))

    def _require_usdm(self, what: str) -> None:
        if self.venue is not Venue.BINANCE_USDM:
            raise VenueError(self.name, f"{what} exist on binance_usdm only")


@dataclass
class VenueSet:
    """The live venues of one run, by Venue."""

    venues: dict[Venue, LiveVenue] = field(default_factory=dict)

    def __getitem__(self, venue: Venue | str) -> LiveVenue:
        return self.venues[Venue(venue)]

    async def close(self) -> None:
        await asyncio.gather(*(v.close() for v in self.venues.values()), return_exceptions=True)
