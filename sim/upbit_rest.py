"""Upbit REST v1 on loopback: markets, ticker, orderbook, accounts, orders, all signed as Upbit signs."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from domain.book import Book
from sim.auth import ApiKey, AuthError, upbit_raw_query, verify_upbit
from sim.market import MarketBoard
from sim.matching import MatchingEngine, OrderRejected, OrderRequest, SimOrder
from sim.wire import dec, json_response, kst_iso

VENUE = "upbit"
PREFIX = "/upbit/v1"
NAMES = {"BTC": ("비트코인", "Bitcoin"), "ETH": ("이더리움", "Ethereum"), "USDT": ("테더", "Tether")}
MIN_TOTAL_KRW = 5000.0  # Upbit's minimum order total on KRW markets
REJECT_STATUS = {"duplicate": 400, "insufficient": 400, "no_book": 400, "bad_order": 400,
                 "not_found": 404, "not_open": 400}


def upbit_error(status: int, name: str, message: str) -> web.Response:
    """Upbit's error body: {"error": {"name": ..., "message": ...}}."""
    return json_response({"error": {"name": name, "message": message}}, status=status)


def orderbook_json(book: Book, levels: int = 30) -> dict[str, Any]:
    """The REST /orderbook entry (same long keys as the DEFAULT WebSocket frame)."""
    units = [{"ask_price": a[0], "bid_price": b[0], "ask_size": a[1], "bid_size": b[1]}
             for a, b in zip(book.asks[:levels], book.bids[:levels])]
    return {"market": f"KRW-{book.symbol}", "timestamp": book.ts_ms,
            "total_ask_size": sum(u["ask_size"] for u in units),
            "total_bid_size": sum(u["bid_size"] for u in units),
            "orderbook_units": units, "level": 0}


def order_json(order: SimOrder, with_trades: bool = True) -> dict[str, Any]:
    """An order in Upbit's shape: strings for amounts, bid/ask sides, wait/done/cancel states."""
    req = order.request
    state = {"open": "wait", "filled": "done"}.get(order.status, "cancel")
    by_funds = req.type == "market" and req.side == "buy"
    ord_type = "limit" if req.type == "limit" else ("price" if by_funds else "market")
    out: dict[str, Any] = {
        "uuid": order.order_id, "side": "bid" if req.side == "buy" else "ask", "ord_type": ord_type,
        "price": dec(req.funds if by_funds else req.price), "state": state, "market": f"KRW-{req.symbol}",
        "created_at": kst_iso(order.created_ms), "volume": dec(req.qty),
        "remaining_volume": dec(order.remaining) if req.qty is not None else None,
        "reserved_fee": "0", "remaining_fee": "0", "paid_fee": dec(order.fee),
        "locked": dec(order.remaining * (req.price or 0)) if order.status == "open" else "0",
        "executed_volume": dec(order.filled_qty), "executed_funds": dec(order.filled_quote),
        "trades_count": len(order.fills),
    }
    if req.client_id:
        out["identifier"] = req.client_id
    if req.tif in ("IOC", "FOK"):
        out["time_in_force"] = req.tif.lower()
    if with_trades:
        out["trades"] = [{"market": out["market"], "uuid": f"{order.order_id}-{i}", "price": dec(p),
                          "volume": dec(q), "funds": dec(p * q), "side": out["side"],
                          "created_at": kst_iso(order.updated_ms)} for i, (p, q) in enumerate(order.fills)]
    return out


class UpbitRest:
    """Route handlers; state lives in the shared board and matching engine."""

    def __init__(self, board: MarketBoard, engine: MatchingEngine, keys: dict[str, ApiKey],
                 ack_replies: bool = False) -> None:
        self.board, self.engine, self.keys = board, engine, keys
        self.ack_replies = ack_replies  # answer a create with state wait, as the real Upbit does

    def routes(self) -> list[web.RouteDef]:
        p = PREFIX
        return [web.get(f"{p}/market/all", self.market_all), web.get(f"{p}/ticker", self.ticker),
                web.get(f"{p}/orderbook", self.orderbook), web.get(f"{p}/accounts", self.accounts),
                web.get(f"{p}/orders/chance", self.chance), web.post(f"{p}/orders", self.create),
                web.get(f"{p}/order", self.get_order), web.delete(f"{p}/order", self.cancel),
                web.get(f"{p}/orders/open", self.open_orders), web.get(f"{p}/orders/closed", self.closed_orders),
                web.get(f"{p}/api_keys", self.api_keys)]

    async def market_all(self, request: web.Request) -> web.Response:
        out = []
        for coin in self.board.markets[VENUE]:
            korean, english = NAMES.get(coin, (coin, coin))
            entry = {"market": f"KRW-{coin}", "korean_name": korean, "english_name": english}
            if request.query.get("isDetails") == "true":
                entry["market_warning"] = "NONE"
            out.append(entry)
        return json_response(out)

    def _books(self, request: web.Request) -> list[Book] | web.Response:
        codes = [c for c in request.query.get("markets", "").split(",") if c]
        if not codes:
            return upbit_error(400, "validation_error", "markets is missing")
        books = []
        for code in codes:
            coin = code.removeprefix("KRW-")
            book = self.board.book(VENUE, coin) if code.startswith("KRW-") else None
            if book is None:
                return upbit_error(404, "Code not found", f"market {code} has no book")
            books.append(book)
        return books

    async def ticker(self, request: web.Request) -> web.Response:
        books = self._books(request)
        if isinstance(books, web.Response):
            return books
        return json_response([{"market": f"KRW-{b.symbol}", "trade_price": b.mid, "timestamp": b.ts_ms,
                               "trade_timestamp": b.ts_ms, "opening_price": b.mid, "high_price": b.mid,
                               "low_price": b.mid, "prev_closing_price": b.mid, "change": "EVEN",
                               "acc_trade_volume_24h": 0.0, "acc_trade_price_24h": 0.0} for b in books])

    async def orderbook(self, request: web.Request) -> web.Response:
        books = self._books(request)
        if isinstance(books, web.Response):
            return books
        count = int(request.query.get("count", "30"))
        return json_response([orderbook_json(b, min(max(count, 1), 30)) for b in books])

    async def _auth(self, request: web.Request) -> tuple[ApiKey, dict[str, Any]]:
        """Verify the JWT; return the key and the request parameters (query, or JSON body for POST)."""
        if request.method == "POST":
            text = await request.text()
            try:
                params = json.loads(text) if text else {}
            except json.JSONDecodeError:
                raise AuthError("invalid_parameter", "request body is not JSON") from None
            pairs = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in params.items()]
        else:
            pairs = list(request.query.items())
            params = dict(pairs)
        key = verify_upbit(request.headers.get("Authorization"), self.keys, upbit_raw_query(pairs))
        return key, params

    async def _guarded(self, request: web.Request, handler) -> web.Response:
        try:
            key, params = await self._auth(request)
        except AuthError as err:
            return upbit_error(401, str(err.code), err.message)
        try:
            return await handler(key, params)
        except OrderRejected as err:
            return self._reject(err, params)

    def _reject(self, err: OrderRejected, params: dict[str, Any]) -> web.Response:
        names = {"duplicate": "duplicate_identifier", "not_found": "order_not_found",
                 "insufficient": "insufficient_funds_" + ("bid" if params.get("side") == "bid" else "ask"),
                 "no_book": "market_does_not_exist", "bad_order": "validation_error", "not_open": "order_not_found"}
        self.engine.journal.append("reject", venue=VENUE, reason=err.reason, detail=str(err))
        return upbit_error(REJECT_STATUS[err.reason], names[err.reason], str(err))

    async def accounts(self, request: web.Request) -> web.Response:
        async def run(key: ApiKey, params: dict[str, Any]) -> web.Response:
            acct = self.engine.account(VENUE, key.key)
            assets = sorted(set(acct.free) | set(acct.locked))
            return json_response([{"currency": a, "balance": dec(acct.free.get(a, 0.0)),
                                   "locked": dec(acct.locked.get(a, 0.0)), "avg_buy_price": "0",
                                   "avg_buy_price_modified": False, "unit_currency": "KRW"} for a in assets])
        return await self._guarded(request, run)

    async def chance(self, request: web.Request) -> web.Response:
        async def run(key: ApiKey, params: dict[str, Any]) -> web.Response:
            code = params.get("market", "")
            coin = code.removeprefix("KRW-")
            if not self.board.has_market(VENUE, coin):
                return upbit_error(404, "market_does_not_exist", f"market {code!r} not listed")
            acct = self.engine.account(VENUE, key.key)
            fee = dec(self.engine.fees[VENUE])

            def account(asset: str) -> dict[str, Any]:
                return {"currency": asset, "balance": dec(acct.free.get(asset, 0.0)),
                        "locked": dec(acct.locked.get(asset, 0.0)), "avg_buy_price": "0",
                        "avg_buy_price_modified": False, "unit_currency": "KRW"}
            return json_response({"bid_fee": fee, "ask_fee": fee, "maker_bid_fee": fee, "maker_ask_fee": fee,
                                  "market": {"id": code, "name": f"{coin}/KRW", "order_types": ["limit"],
                                             "order_sides": ["ask", "bid"], "state": "active",
                                             "bid": {"currency": "KRW", "min_total": "5000"},
                                             "ask": {"currency": coin, "min_total": "5000"},
                                             "max_total": "1000000000"},
                                  "bid_account": account("KRW"), "ask_account": account(coin)})
        return await self._guarded(request, run)

    async def create(self, request: web.Request) -> web.Response:
        async def run(key: ApiKey, params: dict[str, Any]) -> web.Response:
            req = self._decode(key, params)
            if isinstance(req, web.Response):
                return req
            order = self.engine.submit(req, self.board.book(VENUE, req.symbol))
            if self.ack_replies:
                order = order.as_accepted()
            return json_response(order_json(order, with_trades=False), status=201)
        return await self._guarded(request, run)

    def _decode(self, key: ApiKey, p: dict[str, Any]) -> OrderRequest | web.Response:
        code, side, ord_type = p.get("market", ""), p.get("side"), p.get("ord_type")
        coin = code.removeprefix("KRW-")
        if not code.startswith("KRW-") or not self.board.has_market(VENUE, coin):
            return upbit_error(400, "market_does_not_exist", f"orders: market {code!r} not listed")
        if side not in ("bid", "ask"):
            return upbit_error(400, "validation_error", "side is missing, side does not have a valid value")
        try:
            volume = float(p["volume"]) if p.get("volume") not in (None, "") else None
            price = float(p["price"]) if p.get("price") not in (None, "") else None
        except ValueError:
            return upbit_error(400, "validation_error", f"orders: volume {p.get('volume')!r} / price {p.get('price')!r} not numbers")
        total = (price or 0) * (volume or 0) if ord_type == "limit" else (
            price if ord_type == "price" else None)
        if total is not None and total < MIN_TOTAL_KRW:
            return upbit_error(400, f"under_min_total_{side}",
                               f"최소주문금액 이상으로 주문해주세요 (orders: total {dec(total)} KRW < {MIN_TOTAL_KRW})")
        tif = {"ioc": "IOC", "fok": "FOK"}.get(str(p.get("time_in_force", "")).lower(), "GTC")
        side_word = "buy" if side == "bid" else "sell"
        if ord_type == "limit":
            if volume is None or price is None:
                return upbit_error(400, "validation_error", "limit order needs volume and price")
            return OrderRequest(VENUE, key.key, coin, side_word, "limit", volume, price, None, tif, p.get("identifier"))
        if ord_type == "price" and side == "bid" and price is not None:
            return OrderRequest(VENUE, key.key, coin, "buy", "market", None, None, price, "IOC", p.get("identifier"))
        if ord_type == "market" and side == "ask" and volume is not None:
            return OrderRequest(VENUE, key.key, coin, "sell", "market", volume, None, None, "IOC", p.get("identifier"))
        return upbit_error(400, "validation_error", f"orders: ord_type {ord_type!r} with side {side!r} not valid")

    async def get_order(self, request: web.Request) -> web.Response:
        async def run(key: ApiKey, params: dict[str, Any]) -> web.Response:
            order = self.engine.find(VENUE, key.key, params.get("uuid"), params.get("identifier"))
            return json_response(order_json(order))
        return await self._guarded(request, run)

    async def cancel(self, request: web.Request) -> web.Response:
        async def run(key: ApiKey, params: dict[str, Any]) -> web.Response:
            order = self.engine.cancel(VENUE, key.key, params.get("uuid"), params.get("identifier"))
            return json_response(order_json(order, with_trades=False))
        return await self._guarded(request, run)

    async def open_orders(self, request: web.Request) -> web.Response:
        async def run(key: ApiKey, params: dict[str, Any]) -> web.Response:
            coin = params["market"].removeprefix("KRW-") if params.get("market") else None
            orders = self.engine.open_orders(VENUE, key.key, coin)
            return json_response([order_json(o, with_trades=False) for o in orders])
        return await self._guarded(request, run)

    async def closed_orders(self, request: web.Request) -> web.Response:
        async def run(key: ApiKey, params: dict[str, Any]) -> web.Response:
            want = {"done": {"filled"}, "cancel": {"canceled"}}.get(params.get("state", ""), {"filled", "canceled"})
            coin = params["market"].removeprefix("KRW-") if params.get("market") else None
            orders = [o for o in self.engine.orders_of(VENUE, key.key)
                      if o.status in want and (coin is None or o.request.symbol == coin)]
            return json_response([order_json(o, with_trades=False) for o in reversed(orders)])
        return await self._guarded(request, run)

    async def api_keys(self, request: web.Request) -> web.Response:
        """GET /v1/api_keys: the account's keys with their expiry (Upbit tells nothing of permissions)."""
        async def run(key: ApiKey, params: dict[str, Any]) -> web.Response:
            return json_response([{"access_key": key.key, "expire_at": key.expire_at}])
        return await self._guarded(request, run)
