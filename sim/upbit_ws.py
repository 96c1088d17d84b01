"""Upbit WebSocket v1 on loopback: ticket/type/codes subscriptions, whole-book frames, binary, keepalive."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from domain.book import Book
from sim.faults import Faults
from sim.market import MarketBoard
from sim.streams import Outbox, StreamHub

VENUE = "upbit"
PATH = "/upbit/websocket/v1"
MAX_LEVELS = 30
SIMPLE_KEYS = {"type": "ty", "code": "cd", "timestamp": "tms", "total_ask_size": "tas",
               "total_bid_size": "tbs", "orderbook_units": "obu", "stream_type": "st", "level": "lv",
               "ask_price": "ap", "bid_price": "bp", "ask_size": "as", "bid_size": "bs",
               "trade_date": "td", "trade_time": "ttm", "trade_timestamp": "ttms", "trade_price": "tp",
               "trade_volume": "tv", "ask_bid": "ab", "prev_closing_price": "pcp", "change": "c",
               "change_price": "cp", "sequential_id": "sid"}


def orderbook_frame(book: Book, stream_type: str, levels: int = MAX_LEVELS) -> dict[str, Any]:
    """A DEFAULT-format orderbook frame carrying the whole top of book."""
    units = [{"ask_price": a[0], "bid_price": b[0], "ask_size": a[1], "bid_size": b[1]}
             for a, b in zip(book.asks[:levels], book.bids[:levels])]
    return {"type": "orderbook", "code": f"KRW-{book.symbol}", "timestamp": book.ts_ms,
            "total_ask_size": sum(u["ask_size"] for u in units),
            "total_bid_size": sum(u["bid_size"] for u in units),
            "orderbook_units": units, "stream_type": stream_type, "level": 0}


def simple(frame: Any) -> Any:
    """The SIMPLE format: the same frame with Upbit's short keys."""
    if isinstance(frame, dict):
        return {SIMPLE_KEYS.get(k, k): simple(v) for k, v in frame.items()}
    if isinstance(frame, list):
        return [simple(v) for v in frame]
    return frame


@dataclass
class Subscriber:
    """One client's current request: codes per type, output format, which codes got their snapshot."""

    outbox: Outbox
    fmt: str = "DEFAULT"
    books: dict[str, int] = field(default_factory=dict)  # code -> levels wanted
    trades: set[str] = field(default_factory=set)
    snapshot_sent: set[str] = field(default_factory=set)
    only_snapshot: bool = False


class BadRequest(ValueError):
    """A subscription message Upbit would refuse."""


def parse_request(text: str) -> tuple[str, dict[str, int], set[str], bool]:
    """Parse `[{"ticket":..},{"type":"orderbook","codes":[..]},{"format":"SIMPLE"}]`."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        raise BadRequest("request is not JSON") from None
    if not isinstance(items, list) or not any(isinstance(i, dict) and "ticket" in i for i in items):
        raise BadRequest("request must be a JSON array with a ticket field")
    fmt, books, trades, only_snapshot = "DEFAULT", {}, set(), False
    for item in items:
        if not isinstance(item, dict):
            raise BadRequest("every request item must be an object")
        if "format" in item:
            fmt = str(item["format"]).upper()
            if fmt not in ("DEFAULT", "SIMPLE"):
                raise BadRequest(f"format {item['format']!r} not supported")
        if "type" in item:
            codes = item.get("codes")
            if not isinstance(codes, list) or not codes:
                raise BadRequest(f"type {item['type']!r}: codes must be a non-empty list")
            only_snapshot = only_snapshot or bool(item.get("isOnlySnapshot"))
            for raw in codes:
                code, _, count = str(raw).upper().partition(".")
                if item["type"] == "orderbook":
                    books[code] = min(int(count), MAX_LEVELS) if count.isdigit() else MAX_LEVELS
                elif item["type"] == "trade":
                    trades.add(code)
                else:
                    raise BadRequest(f"type {item['type']!r} not supported by the simulator")
    return fmt, books, trades, only_snapshot


class UpbitStream:
    """Serves /websocket/v1 and pushes every published Upbit book to the clients that asked for it."""

    def __init__(self, board: MarketBoard, faults: Faults, hub: StreamHub, keepalive_s: float = 10.0) -> None:
        self.board, self.faults, self.hub, self.keepalive_s = board, faults, hub, keepalive_s
        self.subscribers: list[Subscriber] = []
        board.listen(self.on_book)

    def routes(self) -> list[web.RouteDef]:
        return [web.get(PATH, self.handle)]

    def on_book(self, book: Book, diff: object) -> None:
        if book.venue != VENUE:
            return
        code = f"KRW-{book.symbol}"
        for sub in self.subscribers:
            if code in sub.books and not sub.only_snapshot:
                self._send_book(sub, book, code)

    def _send_book(self, sub: Subscriber, book: Book, code: str) -> None:
        stream_type = "REALTIME" if code in sub.snapshot_sent else "SNAPSHOT"
        sub.snapshot_sent.add(code)
        frame = orderbook_frame(book, stream_type, sub.books[code])
        sub.outbox.put(simple(frame) if sub.fmt == "SIMPLE" else frame)

    def send_trade(self, code: str, price: float, qty: float, side: str, ts_ms: int, seq: int) -> None:
        """Publish a trade frame (the simulator's own fills are the only trades it knows)."""
        frame = {"type": "trade", "code": code, "timestamp": ts_ms, "trade_date": "", "trade_time": "",
                 "trade_timestamp": ts_ms, "trade_price": price, "trade_volume": qty,
                 "ask_bid": "BID" if side == "buy" else "ASK", "prev_closing_price": price,
                 "change": "EVEN", "change_price": 0.0, "sequential_id": seq, "stream_type": "REALTIME"}
        for sub in self.subscribers:
            if code in sub.trades:
                sub.outbox.put(simple(frame) if sub.fmt == "SIMPLE" else frame)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        sub = Subscriber(Outbox(ws, VENUE, self.faults, binary=True))
        self.hub.add(VENUE, ws)
        self.subscribers.append(sub)
        try:
            while True:
                try:
                    msg = await ws.receive(timeout=self.keepalive_s)
                except asyncio.TimeoutError:
                    sub.outbox.put({"status": "UP"})
                    continue
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
                text = msg.data if msg.type == WSMsgType.TEXT else msg.data.decode(errors="replace")
                if text.strip().upper() == "PING":
                    sub.outbox.put({"status": "UP"})
                    continue
                self._subscribe(sub, text)
        finally:
            self.subscribers.remove(sub)
            self.hub.remove(VENUE, ws)
            sub.outbox.close()
        return ws

    def _subscribe(self, sub: Subscriber, text: str) -> None:
        """A new request replaces the old one; each orderbook code gets a SNAPSHOT first."""
        try:
            sub.fmt, sub.books, sub.trades, sub.only_snapshot = parse_request(text)
        except BadRequest as err:
            sub.outbox.put({"error": {"name": "WRONG_FORMAT", "message": str(err)}})
            return
        sub.snapshot_sent = set()
        for code in sub.books:
            book = self.board.book(VENUE, code.removeprefix("KRW-")) if code.startswith("KRW-") else None
            if book is not None:
                self._send_book(sub, book, code)
