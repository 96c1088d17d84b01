"""Binance spot and USDT-M market streams on loopback: raw and combined, SUBSCRIBE, sequenced depthUpdate."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from domain.book import Book
from sim.faults import Faults
from sim.market import DepthDiff, MarketBoard
from sim.streams import Outbox, StreamHub
from sim.wire import dec, fixed8

# Spot lives under ".../stream/..." because ccxt.pro tells spot from futures by '/stream' in the URL.
PATHS = {"binance": ("/binance/stream/ws", "/binance/stream/ws/{idx}", "/binance/stream/stream"),
         "binance_usdm": ("/binance_usdm/ws", "/binance_usdm/{cat}/ws", "/binance_usdm/{cat}/ws/{idx}",
                          "/binance_usdm/stream", "/binance_usdm/{cat}/stream")}
CHANNELS = ("depth", "depth@100ms", "depth@250ms", "depth@500ms", "bookTicker")


@dataclass
class Subscriber:
    """One client: raw (/ws) or combined (/stream) framing, and the stream names it follows."""

    outbox: Outbox
    combined: bool
    streams: set[str] = field(default_factory=set)


def depth_event(diff: DepthDiff, usdm: bool) -> dict[str, Any]:
    """A depthUpdate whose U/u (and pu on USDT-M) continue the REST snapshot's lastUpdateId."""
    fmt = dec if usdm else fixed8
    event: dict[str, Any] = {"e": "depthUpdate", "E": diff.ts_ms}
    if usdm:
        event["T"] = diff.ts_ms
    event.update({"s": f"{diff.symbol}USDT", "U": diff.first_id, "u": diff.last_id})
    if usdm:
        event["pu"] = diff.prev_last_id
    event["b"] = [[fmt(p), fmt(q)] for p, q in diff.bids]
    event["a"] = [[fmt(p), fmt(q)] for p, q in diff.asks]
    return event


def book_ticker_event(book: Book, update_id: int, usdm: bool) -> dict[str, Any]:
    fmt = dec if usdm else fixed8
    event: dict[str, Any] = {"e": "bookTicker"} if usdm else {}
    event.update({"u": update_id, "s": f"{book.symbol}USDT", "b": fmt(book.bids[0][0]),
                  "B": fmt(book.bids[0][1]), "a": fmt(book.asks[0][0]), "A": fmt(book.asks[0][1])})
    if usdm:
        event.update({"T": book.ts_ms, "E": book.ts_ms})
    return event


def valid_stream(name: str) -> bool:
    symbol, _, channel = name.partition("@")
    return bool(symbol) and symbol == symbol.lower() and channel in CHANNELS


class BinanceStream:
    """Serves one Binance venue's stream endpoints and pushes each published book as events."""

    def __init__(self, venue: str, board: MarketBoard, faults: Faults, hub: StreamHub,
                 user_stream: Any = None) -> None:
        self.venue, self.board, self.faults, self.hub = venue, board, faults, hub
        self.user_stream = user_stream   # USDT-M: a URL with ?listenKey= is the private order stream
        self.usdm = venue == "binance_usdm"
        self.subscribers: list[Subscriber] = []
        board.listen(self.on_book)

    def routes(self) -> list[web.RouteDef]:
        return [web.get(path, self.handle) for path in PATHS[self.venue]]

    def on_book(self, book: Book, diff: DepthDiff | None) -> None:
        if book.venue != self.venue or diff is None:
            return
        lower = f"{book.symbol.lower()}usdt"
        depth = depth_event(diff, self.usdm)
        ticker = book_ticker_event(book, diff.last_id, self.usdm) if book.bids and book.asks else None
        for sub in self.subscribers:
            for name in sub.streams:
                if not name.startswith(lower + "@"):
                    continue
                channel = name.partition("@")[2]
                event = ticker if channel == "bookTicker" else depth
                if event is not None:
                    sub.outbox.put({"stream": name, "data": event} if sub.combined else event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.user_stream is not None and "listenKey" in request.query:
            return await self.user_stream.handle(request)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        combined = request.path.endswith("/stream")
        sub = Subscriber(Outbox(ws, self.venue, self.faults, binary=False), combined)
        names = [n for n in request.query.get("streams", "").split("/") if n]
        bad = [n for n in names if not valid_stream(n)]
        if bad:
            await ws.close(code=1008, message=f"Invalid stream name(s): {bad}"[:120].encode())
            return ws
        sub.streams.update(names)
        self.hub.add(self.venue, ws)
        self.subscribers.append(sub)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._command(sub, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.subscribers.remove(sub)
            self.hub.remove(self.venue, ws)
            sub.outbox.close()
        return ws

    def _command(self, sub: Subscriber, text: str) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS, answered as Binance answers them."""
        try:
            cmd = json.loads(text)
        except json.JSONDecodeError:
            sub.outbox.put({"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}})
            return
        method, params, req_id = cmd.get("method"), cmd.get("params", []), cmd.get("id")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) and valid_stream(p) for p in params):
                sub.outbox.put({"error": {"code": 2, "msg": f"Invalid request: unknown stream in {params}"},
                                "id": req_id})
                return
            if method == "SUBSCRIBE":
                sub.streams.update(params)
            else:
                sub.streams.difference_update(params)
            sub.outbox.put({"result": None, "id": req_id})
        elif method == "LIST_SUBSCRIPTIONS":
            sub.outbox.put({"result": sorted(sub.streams), "id": req_id})
        else:
            sub.outbox.put({"error": {"code": 1, "msg": f"Unknown method {method!r}"}, "id": req_id})
