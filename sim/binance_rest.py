"""Binance spot (/api/v3) and USDT-M (/fapi) REST on loopback, HMAC-signed as Binance signs."""
from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from domain.book import Book
from domain.venues import Venue, VenueRules
from sim.auth import ApiKey, AuthError, verify_binance
from sim.market import MarketBoard
from sim.matching import MatchingEngine, OrderRejected, OrderRequest, SimOrder, walk_levels
from sim.wire import dec, fixed8, json_response

PREFIX = {"binance": "/binance/api/v3", "binance_usdm": "/binance_usdm/fapi"}
DEFAULT_RULES = {
    "binance": VenueRules(Venue.BINANCE, 0.001, 0.01, 0.00001, 5.0),
    "binance_usdm": VenueRules(Venue.BINANCE_USDM, 0.0005, 0.1, 0.001, 100.0),
}
STATUS = {"open": "NEW", "filled": "FILLED", "canceled": "EXPIRED"}
SAPI_RESTRICTIONS = "/binance/sapi/v1/account/apiRestrictions"  # one per account: spot and USDT-M share it


def binance_error(code: int, msg: str, status: int = 400) -> web.Response:
    """Binance's error body: {"code": -NNNN, "msg": "..."}."""
    return json_response({"code": code, "msg": msg}, status=status)


def on_step(value: float, step: float) -> bool:
    return abs(value / step - round(value / step)) < 1e-6


class BinanceRest:
    """Route handlers for one Binance venue (spot or USDT-M); state lives in board and engine."""

    def __init__(self, venue: str, board: MarketBoard, engine: MatchingEngine, keys: dict[str, ApiKey],
                 rules: dict[str, VenueRules] | None = None, funding_rate: float = 0.0001,
                 ack_replies: bool = False) -> None:
        self.venue, self.board, self.engine, self.keys = venue, board, engine, keys
        self.ack_replies = ack_replies  # answer a create with NEW (newOrderRespType=ACK / USDT-M)
        self.rules = rules or {}
        self.funding_rate = funding_rate
        self.usdm = venue == "binance_usdm"
        self.fmt = dec if self.usdm else fixed8

    def rule(self, coin: str) -> VenueRules:
        return self.rules.get(coin) or DEFAULT_RULES[self.venue]

    def routes(self) -> list[web.RouteDef]:
        p = PREFIX[self.venue]
        v1 = f"{p}/v1" if self.usdm else p
        routes = [web.get(f"{v1}/ping", self.ping), web.get(f"{v1}/time", self.time),
                  web.get(f"{v1}/exchangeInfo", self.exchange_info), web.get(f"{v1}/depth", self.depth),
                  web.get(f"{v1}/ticker/bookTicker", self.book_ticker),
                  web.post(f"{v1}/order", self.create), web.get(f"{v1}/order", self.query),
                  web.delete(f"{v1}/order", self.cancel), web.get(f"{v1}/openOrders", self.open_orders)]
        if self.usdm:
            routes += [web.get(f"{p}/v1/premiumIndex", self.premium_index),
                       web.get(f"{p}/v1/leverageBracket", self.leverage_bracket),
                       web.get(f"{p}/v1/userTrades", self.my_trades)]
            for version in ("v2", "v3"):
                routes += [web.get(f"{p}/{version}/account", self.account),
                           web.get(f"{p}/{version}/balance", self.balance),
                           web.get(f"{p}/{version}/positionRisk", self.position_risk)]
        else:
            routes += [web.get(f"{p}/account", self.account), web.get(f"{p}/myTrades", self.my_trades),
                       web.get(SAPI_RESTRICTIONS, self.api_restrictions)]
        return routes

    # ---- public ----
    async def ping(self, request: web.Request) -> web.Response:
        return json_response({})

    async def time(self, request: web.Request) -> web.Response:
        return json_response({"serverTime": self.engine.clock_ms()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        return json_response({"timezone": "UTC", "serverTime": self.engine.clock_ms(), "rateLimits": [],
                              "exchangeFilters": [], "symbols": [self._symbol_info(c)
                                                                 for c in self.board.markets[self.venue]]})

    def _symbol_info(self, coin: str) -> dict[str, Any]:
        r = self.rule(coin)
        filters = [{"filterType": "PRICE_FILTER", "minPrice": self.fmt(r.tick_size), "maxPrice": "1000000",
                    "tickSize": self.fmt(r.tick_size)},
                   {"filterType": "LOT_SIZE", "minQty": self.fmt(r.lot_size), "maxQty": "9000",
                    "stepSize": self.fmt(r.lot_size)},
                   {"filterType": "MARKET_LOT_SIZE", "minQty": self.fmt(r.lot_size), "maxQty": "9000",
                    "stepSize": self.fmt(r.lot_size)}]
        info: dict[str, Any] = {"symbol": f"{coin}USDT", "status": "TRADING", "baseAsset": coin,
                                "quoteAsset": "USDT", "baseAssetPrecision": 8, "quotePrecision": 8,
                                "orderTypes": ["LIMIT", "MARKET"]}
        if self.usdm:
            filters.append({"filterType": "MIN_NOTIONAL", "notional": dec(r.min_notional)})
            info.update({"pair": f"{coin}USDT", "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
                         "onboardDate": 1569398400000, "marginAsset": "USDT", "underlyingType": "COIN",
                         "pricePrecision": max(0, -int(math.floor(math.log10(r.tick_size)))),
                         "quantityPrecision": max(0, -int(math.floor(math.log10(r.lot_size)))),
                         "timeInForce": ["GTC", "IOC", "FOK", "GTX"], "triggerProtect": "0.0500"})
        else:
            filters.append({"filterType": "NOTIONAL", "minNotional": fixed8(r.min_notional),
                            "applyMinToMarket": True, "maxNotional": "9000000.00000000",
                            "applyMaxToMarket": False, "avgPriceMins": 5})
            info.update({"isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
                         "quoteAssetPrecision": 8, "permissions": ["SPOT"], "permissionSets": [["SPOT"]],
                         "quoteOrderQtyMarketAllowed": True})
        info["filters"] = filters
        return info

    def _book(self, request: web.Request) -> tuple[str, Book] | web.Response:
        symbol = request.query.get("symbol", "")
        coin = symbol.removesuffix("USDT")
        if not symbol.endswith("USDT") or not self.board.has_market(self.venue, coin):
            return binance_error(-1121, "Invalid symbol.")
        book = self.board.book(self.venue, coin)
        if book is None:
            return binance_error(-1121, f"Invalid symbol. ({symbol} has no book published yet)")
        return coin, book

    async def depth(self, request: web.Request) -> web.Response:
        found = self._book(request)
        if isinstance(found, web.Response):
            return found
        coin, book = found
        limit = int(request.query.get("limit", "100"))
        out: dict[str, Any] = {"lastUpdateId": self.board.last_update_id(self.venue, coin)}
        if self.usdm:
            out.update({"E": book.ts_ms, "T": book.ts_ms})
        out["bids"] = [[self.fmt(p), self.fmt(q)] for p, q in book.bids[:limit]]
        out["asks"] = [[self.fmt(p), self.fmt(q)] for p, q in book.asks[:limit]]
        return json_response(out)

    async def book_ticker(self, request: web.Request) -> web.Response:
        found = self._book(request)
        if isinstance(found, web.Response):
            return found
        coin, book = found
        return json_response({"symbol": f"{coin}USDT", "bidPrice": self.fmt(book.bids[0][0]),
                              "bidQty": self.fmt(book.bids[0][1]), "askPrice": self.fmt(book.asks[0][0]),
                              "askQty": self.fmt(book.asks[0][1])})

    async def premium_index(self, request: web.Request) -> web.Response:
        found = self._book(request)
        if isinstance(found, web.Response):
            return found
        coin, book = found
        now = self.engine.clock_ms()
        eight_h = 8 * 3600 * 1000
        return json_response({"symbol": f"{coin}USDT", "markPrice": dec(book.mid), "indexPrice": dec(book.mid),
                              "estimatedSettlePrice": dec(book.mid), "lastFundingRate": dec(self.funding_rate),
                              "interestRate": "0.00010000", "nextFundingTime": (now // eight_h + 1) * eight_h,
                              "time": now})

    # ---- signed ----
    async def _signed(self, request: web.Request, handler) -> web.Response:
        payload = request.query_string
        if request.method == "POST":
            body = await request.text()
            payload = f"{payload}&{body}" if payload and body else (payload or body)
        try:
            key, params = verify_binance(request.headers.get("X-MBX-APIKEY"), self.keys, payload,
                                         self.engine.clock_ms())
        except AuthError as err:
            status = 401 if err.code in (-2015,) else 400
            return binance_error(int(err.code), err.message, status)
        try:
            return await handler(key, params)
        except OrderRejected as err:
            return self._reject(err)

    def _reject(self, err: OrderRejected) -> web.Response:
        self.engine.journal.append("reject", venue=self.venue, reason=err.reason, detail=str(err))
        if err.reason == "duplicate":
            return binance_error(-4116, "ClientOrderId is duplicated.") if self.usdm else \
                binance_error(-2010, "Duplicate order sent.")
        if err.reason == "insufficient":
            return binance_error(-2019, "Margin is insufficient.") if self.usdm else \
                binance_error(-2010, "Account has insufficient balance for requested action.")
        if err.reason == "not_found":
            return binance_error(-2013, "Order does not exist.")
        if err.reason == "not_open":
            return binance_error(-2011, "Unknown order sent.")
        return binance_error(-1013, str(err))

    async def create(self, request: web.Request) -> web.Response:
        async def run(key: ApiKey, p: dict[str, str]) -> web.Response:
            req = self._decode(key, p)
            if isinstance(req, web.Response):
                return req
            order = self.engine.submit(req, self.board.book(self.venue, req.symbol))
            if self.ack_replies:
                return json_response(self.order_json(order.as_accepted()))
            return json_response(self.order_json(order, fills=not self.usdm))
        return await self._signed(request, run)

    def _decode(self, key: ApiKey, p: dict[str, str]) -> OrderRequest | web.Response:
        symbol = p.get("symbol", "")
        coin = symbol.removesuffix("USDT")
        if not symbol.endswith("USDT") or not self.board.has_market(self.venue, coin):
            return binance_error(-1121, "Invalid symbol.")
        side, otype = p.get("side", "").upper(), p.get("type", "").upper()
        if side not in ("BUY", "SELL") or otype not in ("MARKET", "LIMIT"):
            return binance_error(-1102, f"side {side!r} / type {otype!r}: only BUY/SELL MARKET/LIMIT simulated")
        try:
            qty = float(p["quantity"]) if "quantity" in p else None
            price = float(p["price"]) if "price" in p else None
            funds = float(p["quoteOrderQty"]) if "quoteOrderQty" in p else None
        except ValueError:
            return binance_error(-1100, "Illegal characters found in a parameter.")
        r = self.rule(coin)
        if qty is not None and not on_step(qty, r.lot_size):
            return binance_error(-1013, "Filter failure: LOT_SIZE")
        if price is not None and not on_step(price, r.tick_size):
            return binance_error(-1013, "Filter failure: PRICE_FILTER")
        book = self.board.book(self.venue, coin)
        ref = price or (book.mid if book else 0.0)
        if qty is not None and ref and qty * ref < r.min_notional and p.get("reduceOnly") != "true":
            name = "MIN_NOTIONAL" if self.usdm else "NOTIONAL"
            return binance_error(-4164 if self.usdm else -1013, f"Filter failure: {name}")
        if otype == "MARKET" and qty is None and funds is not None and book is not None:
            qty = self._qty_for_funds(book, side, funds, r)  # the venue rounds it down to the step
            funds = None
        tif = p.get("timeInForce", "GTC" if otype == "LIMIT" else "IOC").upper()
        if otype == "LIMIT" and (qty is None or price is None or "timeInForce" not in p):
            return binance_error(-1102, "LIMIT needs quantity, price and timeInForce.")
        client_id = p.get("newClientOrderId") or None
        return OrderRequest(self.venue, key.key, coin, side.lower(), otype.lower(), qty,
                            price if otype == "LIMIT" else None, funds, tif if otype == "LIMIT" else "IOC",
                            client_id, p.get("reduceOnly") == "true")

    @staticmethod
    def _qty_for_funds(book: Book, side: str, funds: float, rule: VenueRules) -> float:
        """Base quantity that `funds` of quote buys (or sells) walking the book, down to the lot step."""
        levels = book.asks if side == "BUY" else book.bids
        fills = walk_levels(levels, None, funds, None, side.lower())
        return rule.round_qty(sum(q for _, q in fills))

    def order_json(self, order: SimOrder, fills: bool = False) -> dict[str, Any]:
        """An order in this venue's shape (spot with FULL fills on create, USDT-M with avgPrice)."""
        req, f = order.request, self.fmt
        status = STATUS[order.status]
        if order.status == "open" and order.filled_qty > 0:
            status = "PARTIALLY_FILLED"
        if order.status == "canceled" and req.type == "limit" and req.tif == "GTC":
            status = "CANCELED"
        qty = req.qty if req.qty is not None else order.filled_qty
        out: dict[str, Any] = {"symbol": f"{req.symbol}USDT", "orderId": int(order.order_id),
                               "clientOrderId": req.client_id or f"sim{order.order_id}",
                               "price": f(req.price or 0.0), "origQty": f(qty),
                               "executedQty": f(order.filled_qty), "status": status,
                               "timeInForce": req.tif, "type": req.type.upper(), "side": req.side.upper(),
                               "updateTime": order.updated_ms}
        if self.usdm:
            avg = order.filled_quote / order.filled_qty if order.filled_qty else 0.0
            out.update({"avgPrice": f(avg), "cumQty": f(order.filled_qty), "cumQuote": f(order.filled_quote),
                        "reduceOnly": req.reduce_only, "closePosition": False, "positionSide": "BOTH",
                        "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False,
                        "origType": req.type.upper(), "priceMatch": "NONE",
                        "selfTradePreventionMode": "NONE", "goodTillDate": 0})
        else:
            out.update({"orderListId": -1, "transactTime": order.created_ms, "time": order.created_ms,
                        "cummulativeQuoteQty": f(order.filled_quote),
                        "origQuoteOrderQty": f(req.funds or 0.0), "workingTime": order.created_ms,
                        "isWorking": True, "selfTradePreventionMode": "NONE"})
        if fills:
            total = order.filled_qty or 1.0
            out["fills"] = [{"price": f(p), "qty": f(q), "commission": f(order.fee * q / total),
                             "commissionAsset": order.fee_asset, "tradeId": order.seq * 1000 + i}
                            for i, (p, q) in enumerate(order.fills)]
        return out

    def _find_args(self, p: dict[str, str]) -> tuple[str | None, str | None]:
        return p.get("orderId"), p.get("origClientOrderId")

    async def query(self, request: web.Request) -> web.Response:
        async def run(key: ApiKey, p: dict[str, str]) -> web.Response:
            return json_response(self.order_json(self.engine.find(self.venue, key.key, *self._find_args(p))))
        return await self._signed(request, run)

    async def cancel(self, request: web.Request) -> web.Response:
        async def run(key: ApiKey, p: dict[str, str]) -> web.Response:
            order = self.engine.cancel(self.venue, key.key, *self._find_args(p))
            return json_response(self.order_json(order))
        return await self._signed(request, run)

    async def open_orders(self, request: web.Request) -> web.Response:
        async def run(key: ApiKey, p: dict[str, str]) -> web.Response:
            coin = p["symbol"].removesuffix("USDT") if p.get("symbol") else None
            return json_response([self.order_json(o) for o in self.engine.open_orders(self.venue, key.key, coin)])
        return await self._signed(request, run)

    async def account(self, request: web.Request) -> web.Response:
        async def run(key: ApiKey, p: dict[str, str]) -> web.Response:
            acct = self.engine.account(self.venue, key.key)
            now = self.engine.clock_ms()
            if not self.usdm:
                assets = sorted(set(acct.free) | set(acct.locked))
                return json_response({"makerCommission": 10, "takerCommission": 10, "canTrade": True,
                                      "canWithdraw": True, "canDeposit": True, "updateTime": now,
                                      "accountType": "SPOT", "permissions": ["SPOT"],
                                      "balances": [{"asset": a, "free": fixed8(acct.free.get(a, 0.0)),
                                                    "locked": fixed8(acct.locked.get(a, 0.0))} for a in assets]})
            assets = self._usdm_assets(key)
            wallet = sum(float(a["walletBalance"]) for a in assets)
            return json_response({"totalWalletBalance": dec(wallet), "availableBalance": dec(wallet),
                                  "assets": assets, "positions": self._positions(key)})
        return await self._signed(request, run)

    def _usdm_assets(self, key: ApiKey) -> list[dict[str, Any]]:
        acct = self.engine.account(self.venue, key.key)
        now = self.engine.clock_ms()
        margin = sum(abs(q) * e for q, e in acct.positions.values())
        out = []
        for asset, free in sorted(acct.free.items()):
            used = margin if asset == "USDT" else 0.0
            out.append({"asset": asset, "walletBalance": dec(free), "balance": dec(free),
                        "marginBalance": dec(free), "availableBalance": dec(free - used),
                        "initialMargin": dec(used), "unrealizedProfit": "0", "updateTime": now})
        return out

    def _positions(self, key: ApiKey) -> list[dict[str, Any]]:
        acct = self.engine.account(self.venue, key.key)
        out = []
        for coin, (qty, entry) in sorted(acct.positions.items()):
            book = self.board.book(self.venue, coin)
            mark = book.mid if book else entry
            out.append({"symbol": f"{coin}USDT", "positionAmt": dec(qty), "entryPrice": dec(entry),
                        "markPrice": dec(mark), "unRealizedProfit": dec(qty * (mark - entry)),
                        "liquidationPrice": "0", "leverage": "1", "marginType": "cross",
                        "positionSide": "BOTH", "notional": dec(qty * mark), "isolatedMargin": "0",
                        "updateTime": self.engine.clock_ms()})
        return out

    async def balance(self, request: web.Request) -> web.Response:
        async def run(key: ApiKey, p: dict[str, str]) -> web.Response:
            return json_response([{"accountAlias": "sim", **a, "crossWalletBalance": a["walletBalance"],
                                   "maxWithdrawAmount": a["availableBalance"]} for a in self._usdm_assets(key)])
        return await self._signed(request, run)

    async def leverage_bracket(self, request: web.Request) -> web.Response:
        """One flat bracket per market (ccxt loads these before fetch_positions)."""
        async def run(key: ApiKey, p: dict[str, str]) -> web.Response:
            return json_response([{"symbol": f"{c}USDT", "brackets": [
                {"bracket": 1, "initialLeverage": 20, "notionalCap": 10_000_000, "notionalFloor": 0,
                 "maintMarginRatio": 0.004, "cum": 0.0}]} for c in self.board.markets[self.venue]])
        return await self._signed(request, run)

    async def api_restrictions(self, request: web.Request) -> web.Response:
        """What the key may do (GET /sapi/v1/account/apiRestrictions), from the key's permissions."""
        async def run(key: ApiKey, p: dict[str, str]) -> web.Response:
            return json_response({"ipRestrict": False, "createTime": 1_700_000_000_000, "enableReading": True,
                                  "enableWithdrawals": key.can_withdraw, "enableInternalTransfer": False,
                                  "enableMargin": False, "enableFutures": key.can_trade,
                                  "permitsUniversalTransfer": False, "enableVanillaOptions": False,
                                  "enableFixApiTrade": False, "enableFixReadOnly": False,
                                  "enableSpotAndMarginTrading": key.can_trade,
                                  "enablePortfolioMarginTrading": False})
        return await self._signed(request, run)

    async def my_trades(self, request: web.Request) -> web.Response:
        """The key's trades on one symbol (spot /api/v3/myTrades, USDT-M /fapi/v1/userTrades)."""
        async def run(key: ApiKey, p: dict[str, str]) -> web.Response:
            symbol = p.get("symbol", "")
            coin = symbol.removesuffix("USDT")
            if not symbol.endswith("USDT") or not self.board.has_market(self.venue, coin):
                return binance_error(-1121, "Invalid symbol.")
            order_id = p.get("orderId")
            trades = [t for o in self.engine.orders_of(self.venue, key.key)
                      if o.request.symbol == coin and (order_id is None or o.order_id == order_id)
                      for t in self.trades_json(o)]
            from_id = int(p["fromId"]) if p.get("fromId") else None
            trades = [t for t in trades if from_id is None or t["id"] >= from_id]
            return json_response(trades[-int(p.get("limit", "500")):])
        return await self._signed(request, run)

    def trades_json(self, order: SimOrder) -> list[dict[str, Any]]:
        """One order's fills as Binance lists them; the commission is split over fills by quantity."""
        req, f = order.request, self.fmt
        total = order.filled_qty or 1.0
        out = []
        for i, (price, qty) in enumerate(order.fills):
            trade: dict[str, Any] = {"symbol": f"{req.symbol}USDT", "id": order.seq * 1000 + i,
                                     "orderId": int(order.order_id), "price": f(price), "qty": f(qty),
                                     "quoteQty": f(price * qty), "commission": f(order.fee * qty / total),
                                     "commissionAsset": order.fee_asset, "time": order.updated_ms}
            if self.usdm:
                trade.update({"side": req.side.upper(), "positionSide": "BOTH", "buyer": req.side == "buy",
                              "maker": False, "realizedPnl": "0", "marginAsset": "USDT"})
            else:
                trade.update({"orderListId": -1, "isBuyer": req.side == "buy", "isMaker": False,
                              "isBestMatch": True})
            out.append(trade)
        return out

    async def position_risk(self, request: web.Request) -> web.Response:
        async def run(key: ApiKey, p: dict[str, str]) -> web.Response:
            return json_response(self._positions(key))
        return await self._signed(request, run)
