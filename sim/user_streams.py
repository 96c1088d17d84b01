"""Private order streams on loopback, each authenticated the way its venue does it:

- Upbit: /websocket/v1/private with the JWT in the upgrade request's Authorization header; `myOrder`
  frames (state wait, trade per fill, then done or cancel).
- Binance spot: the WebSocket API (/ws-api/v3) method userDataStream.subscribe.signature (HMAC of
  the sorted params); `executionReport` events wrapped in {"subscriptionId", "event"}.
- Binance USDT-M: a listenKey from POST /fapi/v1/listenKey (API key header, no signature), then
  /private/ws?listenKey=...; `ORDER_TRADE_UPDATE` events.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import WSMsgType, web

from sim.auth import ApiKey, AuthError, verify_binance, verify_upbit
from sim.faults import Faults
from sim.matching import SimOrder
from sim.streams import Outbox, StreamHub
from sim.wire import dec, fixed8, json_response

Fills = tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Step:
    """One update of an order as a stream tells it: what happened, the fill if any, the totals after."""

    kind: str            # NEW | TRADE | DONE | CANCELED | EXPIRED
    status: str          # open | partial | filled | canceled | expired
    last_price: float
    last_qty: float
    cum_qty: float
    cum_quote: float
    cum_fee: float
    trade_no: int        # index of the fill within the order (trade ids derive from it)


def steps(event: str, order: SimOrder, fills: Fills) -> list[Step]:
    """The updates a venue streams for one matching-engine event, fill by fill."""
    if event == "canceled":
        return [Step("CANCELED", "canceled", 0.0, 0.0, order.filled_qty, order.filled_quote, order.fee, -1)]
    total = order.filled_qty or 1.0
    qty = order.filled_qty - sum(q for _, q in fills)
    quote = order.filled_quote - sum(p * q for p, q in fills)
    out = [] if event == "matched" else [Step("NEW", "open", 0.0, 0.0, 0.0, 0.0, 0.0, -1)]
    first = len(order.fills) - len(fills)
    for i, (price, size) in enumerate(fills):
        qty, quote = qty + size, quote + price * size
        left = (order.request.qty or 0.0) - qty
        done = (left <= 1e-12 and order.request.qty is not None) or (
            i == len(fills) - 1 and order.status == "filled")
        out.append(Step("TRADE", "filled" if done else "partial", price, size, qty, quote,
                        order.fee * qty / total, first + i))
    if order.status == "canceled":       # an IOC or market remainder the venue let go
        out.append(Step("EXPIRED", "expired", 0.0, 0.0, qty, quote, order.fee * qty / total if qty else 0.0, -1))
    elif order.status == "filled":       # Upbit says done in a frame of its own; Binance does not
        out.append(Step("DONE", "filled", 0.0, 0.0, qty, quote, order.fee, -1))
    return out


@dataclass
class Client:
    """One authenticated stream client: which key it belongs to, and its outgoing queue."""

    key: str
    outbox: Outbox
    codes: set[str] | None = None         # Upbit myOrder codes (None = every market)
    subscription: int | None = None       # Binance WebSocket API subscription id


class _Private:
    """Shared bookkeeping: clients by key, and the engine's order events fanned out to them."""

    venue = ""
    skip: frozenset[str] = frozenset()   # step kinds this venue does not stream

    def __init__(self, keys: dict[str, ApiKey], faults: Faults, hub: StreamHub, clock_ms: Callable[[], int]) -> None:
        self.keys, self.faults, self.hub, self.clock_ms = keys, faults, hub, clock_ms
        self.clients: list[Client] = []

    def on_order(self, event: str, order: SimOrder, fills: Fills) -> None:
        if order.request.venue != self.venue:
            return
        targets = [c for c in self.clients if c.key == order.request.key and self.wants(c, order)]
        if not targets:
            return
        for step in steps(event, order, fills):
            if step.kind in self.skip:
                continue
            frame = self.frame(order, step)
            for client in targets:
                client.outbox.put(self.wrap(client, frame))

    def wants(self, client: Client, order: SimOrder) -> bool:
        return True

    def wrap(self, client: Client, frame: dict[str, Any]) -> dict[str, Any]:
        return frame

    def frame(self, order: SimOrder, step: Step) -> dict[str, Any]:
        raise NotImplementedError

    async def serve(self, ws: web.WebSocketResponse, client: Client,
                    on_text: Callable[[Client, str], None] | None = None) -> web.WebSocketResponse:
        self.hub.add(self.venue, ws)
        self.clients.append(client)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    break
                text = msg.data if msg.type == WSMsgType.TEXT else (
                    msg.data.decode(errors="replace") if msg.type == WSMsgType.BINARY else None)
                if text is not None and on_text is not None:
                    on_text(client, text)
        finally:
            self.clients.remove(client)
            self.hub.remove(self.venue, ws)
            client.outbox.close()
        return ws


class UpbitOrders(_Private):
    """Upbit's private WebSocket: `myOrder` frames for the key whose JWT opened the connection."""

    venue = "upbit"
    PATH = "/upbit/websocket/v1/private"

    def routes(self) -> list[web.RouteDef]:
        return [web.get(self.PATH, self.handle)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            key = verify_upbit(request.headers.get("Authorization"), self.keys, "")
        except AuthError as err:
            return json_response({"error": {"name": str(err.code), "message": err.message}}, status=401)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        return await self.serve(ws, Client(key.key, Outbox(ws, self.venue, self.faults, binary=True), codes=set()),
                                self._subscribe)

    def _subscribe(self, client: Client, text: str) -> None:
        if text.strip().upper() == "PING":
            client.outbox.put({"status": "UP"})
            return
        try:
            items = json.loads(text)
            wanted = [i for i in items if isinstance(i, dict) and i.get("type") == "myOrder"]
        except (json.JSONDecodeError, TypeError):
            client.outbox.put({"error": {"name": "WRONG_FORMAT", "message": "request is not a JSON array"}})
            return
        if not wanted:
            client.outbox.put({"error": {"name": "WRONG_FORMAT", "message": "the private stream serves myOrder"}})
            return
        codes = [str(c).upper() for i in wanted for c in (i.get("codes") or [])]
        client.codes = set(codes) if codes and all(i.get("codes") for i in wanted) else None

    def wants(self, client: Client, order: SimOrder) -> bool:
        return client.codes is None or f"KRW-{order.request.symbol}" in client.codes

    def frame(self, order: SimOrder, step: Step) -> dict[str, Any]:
        req = order.request
        by_funds = req.type == "market" and req.side == "buy"
        trade = step.kind == "TRADE"
        state = {"NEW": "wait", "TRADE": "trade", "DONE": "done", "CANCELED": "cancel", "EXPIRED": "cancel"}[step.kind]
        now = self.clock_ms()
        return {"type": "myOrder", "code": f"KRW-{req.symbol}", "uuid": order.order_id,
                "ask_bid": "BID" if req.side == "buy" else "ASK",
                "order_type": "limit" if req.type == "limit" else ("price" if by_funds else "market"),
                "state": state, "trade_uuid": f"{order.order_id}-{step.trade_no}" if trade else None,
                "price": step.last_price if trade else (req.funds if by_funds else req.price),
                "avg_price": step.cum_quote / step.cum_qty if step.cum_qty else 0.0,
                "volume": step.last_qty if trade else req.qty,
                "remaining_volume": None if req.qty is None else max(req.qty - step.cum_qty, 0.0),
                "executed_volume": step.cum_qty, "trades_count": step.trade_no + 1 if trade else len(order.fills),
                "reserved_fee": 0.0, "remaining_fee": 0.0, "paid_fee": step.cum_fee, "locked": 0.0,
                "executed_funds": step.cum_quote, "time_in_force": req.tif.lower() if req.tif != "GTC" else None,
                "trade_fee": (order.fee * step.last_qty / (order.filled_qty or 1.0)) if trade else None,
                "is_maker": False if trade else None, "identifier": req.client_id,
                "trade_timestamp": now if trade else None, "order_timestamp": order.created_ms,
                "timestamp": now, "stream_type": "REALTIME"}


def _binance_step_fields(order: SimOrder, step: Step, fmt: Callable[[float], str]) -> dict[str, Any]:
    status = {"open": "NEW", "partial": "PARTIALLY_FILLED", "filled": "FILLED", "canceled": "CANCELED",
              "expired": "EXPIRED"}[step.status]
    fee_part = order.fee * step.last_qty / (order.filled_qty or 1.0) if step.kind == "TRADE" else 0.0
    return {"x": step.kind, "X": status, "l": fmt(step.last_qty), "z": fmt(step.cum_qty), "L": fmt(step.last_price),
            "n": fmt(fee_part), "N": order.fee_asset or None,
            "t": order.seq * 1000 + step.trade_no if step.kind == "TRADE" else -1}


class BinanceSpotOrders(_Private):
    """Binance spot's WebSocket API: userDataStream.subscribe.signature, then executionReport events."""

    venue = "binance"
    skip = frozenset({"DONE"})
    PATH = "/binance/ws-api/v3"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_subscription = 0

    def routes(self) -> list[web.RouteDef]:
        return [web.get(self.PATH, self.handle)]

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        return await self.serve(ws, Client("", Outbox(ws, self.venue, self.faults, binary=False)), self._request)

    def _request(self, client: Client, text: str) -> None:
        try:
            req = json.loads(text)
            req_id, method, params = req.get("id"), req.get("method"), dict(req.get("params") or {})
        except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
            client.outbox.put({"id": None, "status": 400, "error": {"code": -1100, "msg": "Illegal request."}})
            return
        if method != "userDataStream.subscribe.signature":
            client.outbox.put({"id": req_id, "status": 400,
                               "error": {"code": -1100, "msg": f"method {method!r} is not simulated"}})
            return
        signature = str(params.pop("signature", ""))
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params))   # ccxt: keysort + rawencode
        try:
            key, _ = verify_binance(str(params.get("apiKey", "")), self.keys, f"{payload}&signature={signature}",
                                    self.clock_ms())
        except AuthError as err:
            client.outbox.put({"id": req_id, "status": 401 if err.code == -2015 else 400,
                               "error": {"code": err.code, "msg": err.message}})
            return
        client.key, client.subscription = key.key, self._next_subscription
        self._next_subscription += 1
        client.outbox.put({"id": req_id, "status": 200, "result": {"subscriptionId": client.subscription},
                           "rateLimits": []})

    def wants(self, client: Client, order: SimOrder) -> bool:
        return client.subscription is not None

    def wrap(self, client: Client, frame: dict[str, Any]) -> dict[str, Any]:
        return {"subscriptionId": client.subscription, "event": frame}

    def frame(self, order: SimOrder, step: Step) -> dict[str, Any]:
        req, now = order.request, self.clock_ms()
        return {"e": "executionReport", "E": now, "s": f"{req.symbol}USDT",
                "c": req.client_id or f"sim{order.order_id}", "S": req.side.upper(), "o": req.type.upper(),
                "f": req.tif, "q": fixed8(req.qty or 0.0), "p": fixed8(req.price or 0.0), "P": fixed8(0.0),
                "F": fixed8(0.0), "g": -1, "C": "", "r": "NONE", "i": int(order.order_id),
                **_binance_step_fields(order, step, fixed8), "T": now, "I": order.seq * 10 + max(step.trade_no, 0),
                "w": step.status in ("open", "partial"), "m": False, "M": step.kind == "TRADE",
                "O": order.created_ms, "Z": fixed8(step.cum_quote), "Y": fixed8(step.last_price * step.last_qty),
                "Q": fixed8(req.funds or 0.0), "W": order.created_ms, "V": "NONE"}


class BinanceUsdmOrders(_Private):
    """USDT-M user data: listenKey over REST, then ORDER_TRADE_UPDATE on /private/ws?listenKey=."""

    venue = "binance_usdm"
    skip = frozenset({"DONE"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.listen_keys: dict[str, str] = {}   # listenKey -> API key

    def routes(self) -> list[web.RouteDef]:
        path = "/binance_usdm/fapi/v1/listenKey"
        return [web.post(path, self.new_key), web.put(path, self.keep_alive), web.delete(path, self.close_key)]

    def _key(self, request: web.Request) -> ApiKey | None:
        return self.keys.get(request.headers.get("X-MBX-APIKEY", ""))

    async def new_key(self, request: web.Request) -> web.Response:
        key = self._key(request)
        if key is None:
            return json_response({"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}, 401)
        listen = next((lk for lk, k in self.listen_keys.items() if k == key.key), None) or secrets.token_hex(32)
        self.listen_keys[listen] = key.key    # Binance hands back the key's active listenKey if it has one
        return json_response({"listenKey": listen})

    async def keep_alive(self, request: web.Request) -> web.Response:
        if self._key(request) is None:
            return json_response({"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}, 401)
        return json_response({})

    async def close_key(self, request: web.Request) -> web.Response:
        key = self._key(request)
        if key is not None:
            self.listen_keys = {lk: k for lk, k in self.listen_keys.items() if k != key.key}
        return json_response({})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Called by the USDT-M stream endpoint when the URL carries a listenKey."""
        owner = self.listen_keys.get(request.query.get("listenKey", ""))
        if owner is None:
            return json_response({"code": -1125, "msg": "This listenKey does not exist."}, 400)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        return await self.serve(ws, Client(owner, Outbox(ws, self.venue, self.faults, binary=False)))

    def frame(self, order: SimOrder, step: Step) -> dict[str, Any]:
        req, now = order.request, self.clock_ms()
        avg = step.cum_quote / step.cum_qty if step.cum_qty else 0.0
        return {"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": {
            "s": f"{req.symbol}USDT", "c": req.client_id or f"sim{order.order_id}", "S": req.side.upper(),
            "o": req.type.upper(), "f": req.tif, "q": dec(req.qty or 0.0), "p": dec(req.price or 0.0),
            "ap": dec(avg), "sp": "0", **_binance_step_fields(order, step, dec), "i": int(order.order_id),
            "T": now, "b": "0", "a": "0", "m": False, "R": req.reduce_only, "wt": "CONTRACT_PRICE",
            "ot": req.type.upper(), "ps": "BOTH", "cp": False, "rp": "0", "pP": False, "si": 0, "ss": 0,
            "V": "NONE", "pm": "NONE", "gtd": 0}}


def start_private_streams(app_routes: Callable[[list[web.RouteDef]], Any], engine_listeners: list, keys: dict[str, ApiKey],
                          faults: Faults, hub: StreamHub, clock_ms: Callable[[], int]) -> dict[str, _Private]:
    """Create the three private streams, register their routes and hook them to the matching engine."""
    streams = {"upbit": UpbitOrders(keys, faults, hub, clock_ms),
               "binance": BinanceSpotOrders(keys, faults, hub, clock_ms),
               "binance_usdm": BinanceUsdmOrders(keys, faults, hub, clock_ms)}
    for stream in streams.values():
        app_routes(stream.routes())
        engine_listeners.append(stream.on_order)
    return streams
