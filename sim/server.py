"""The simulator server: one aiohttp app on 127.0.0.1 serving Upbit, Binance spot and USDT-M, plus /_sim control."""
from __future__ import annotations

import asyncio
import json
import threading
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any, Iterable, Mapping

from aiohttp import web

from domain.book import Book
from domain.venues import VenueRules
from sim.auth import ApiKey
from sim.binance_rest import BinanceRest
from sim.binance_ws import BinanceStream
from sim.faults import BadFault, Faults
from sim.journal import Journal
from sim.market import VENUES, MarketBoard
from sim.matching import FeeInAsset, MatchingEngine, SimOrder
from sim.replay import Replayer
from sim.streams import StreamHub
from sim.upbit_rest import UpbitRest
from sim.upbit_ws import UpbitStream
from sim.user_streams import start_private_streams
from sim.wire import json_response

HOST = "127.0.0.1"


def markets_of(books: list[Book]) -> dict[str, tuple[str, ...]]:
    """The markets a recording lists: every (venue, coin) that has at least one book."""
    out: dict[str, list[str]] = {v: [] for v in VENUES}
    for book in books:
        if book.venue not in out:
            raise ValueError(f"sim books: venue {book.venue!r} of {book.symbol} at {book.ts_ms} unknown; "
                             f"expected one of {VENUES}")
        if book.symbol not in out[book.venue]:
            out[book.venue].append(book.symbol)
    return {v: tuple(c) for v, c in out.items()}


def fault_response(status: int, venue: str, retry_after_s: int) -> web.Response:
    """What the venue sends when rate limiting (429/418: Upbit plain text, Binance -1003 JSON) or
    failing (5xx: a plain-text gateway page, as the venues' load balancers send)."""
    headers = {"Retry-After": str(retry_after_s)} if status in (418, 429) else None
    if status in (418, 429) and venue != "upbit":
        body = {"code": -1003, "msg": "Too many requests; current limit is 1200 requests per minute."}
        return web.Response(text=json.dumps(body), status=status, headers=headers,
                            content_type="application/json")
    text = "Too many API requests." if status == 429 else f"{status} sim fault"
    return web.Response(text=text, status=status, headers=headers)


class SimServer:
    """A real asyncio exchange simulator on loopback; replays `books` and matches orders against them.

    `markets` maps venue -> coins to list (default: every coin in `books`, which are then read fully).
    `keys` are the accepted API keys; `balances` maps (venue, key) -> {asset: amount} initial funds.
    `speed` > 0 replays in real time scaled by it after start(); None leaves stepping to the caller.
    `ack_replies` lists venues that answer a new order as accepted but not yet matched (Upbit's
    `wait`, USDT-M's `NEW`), so a client must learn the fills from a query or the order stream.
    `fee_in` maps a venue to the third asset it takes fees in (Binance's BNB discount; FeeInAsset).
    """

    def __init__(self, books: Iterable[Book], *, markets: Mapping[str, Iterable[str]] | None = None,
                 keys: Iterable[ApiKey] = (), balances: Mapping[tuple[str, str], Mapping[str, float]] | None = None,
                 speed: float | None = None, journal_path: Path | str | None = None, port: int = 0,
                 rules: Mapping[str, Mapping[str, VenueRules]] | None = None, fees: dict[str, float] | None = None,
                 keepalive_s: float = 10.0, ack_replies: Iterable[str] = (),
                 fee_in: Mapping[str, FeeInAsset] | None = None) -> None:
        if markets is None:
            books = list(books)
            markets = markets_of(books)
        self.board = MarketBoard({v: tuple(c) for v, c in markets.items()})
        self.journal_log = Journal(journal_path)
        self.faults = Faults()
        self.engine = MatchingEngine(self.journal_log, self.clock_ms, fees, fee_in)
        self.keys = {k.key: k for k in keys}
        self.faults.on_gap = self._gap
        self.hub = StreamHub()
        self.replayer = Replayer(books, self._publish)
        self.speed, self.port = speed, port
        self._rules = rules or {}
        self._keepalive_s = keepalive_s
        self._ack = frozenset(ack_replies)   # venues that answer a create before matching it
        self.requests: dict[str, int] = {}   # HTTP and WebSocket requests received, by venue
        self._runner: web.AppRunner | None = None
        self._replay_task: asyncio.Task | None = None
        for (venue, key), assets in (balances or {}).items():
            for asset, amount in assets.items():
                self.engine.fund(venue, key, asset, amount)

    # ---- lifecycle ----
    async def start(self) -> dict[str, Any]:
        """Bind 127.0.0.1, start serving (and replaying when speed is set); return urls()."""
        app = web.Application(middlewares=[self._fault_middleware])
        self.upbit_ws = UpbitStream(self.board, self.faults, self.hub, self._keepalive_s)
        self.engine.on_fill = self._on_fill
        app.add_routes(UpbitRest(self.board, self.engine, self.keys, "upbit" in self._ack).routes()
                       + self.upbit_ws.routes())
        # private order streams first: their fixed paths must win over the public streams' patterns
        self.private = start_private_streams(app.add_routes, self.engine.listeners, self.keys, self.faults,
                                             self.hub, self.clock_ms)
        for venue in ("binance", "binance_usdm"):
            rest = BinanceRest(venue, self.board, self.engine, self.keys, dict(self._rules.get(venue, {})),
                               ack_replies=venue in self._ack)
            stream = BinanceStream(venue, self.board, self.faults, self.hub,
                                   self.private["binance_usdm"] if venue == "binance_usdm" else None)
            app.add_routes(rest.routes() + stream.routes())
        app.add_routes([web.post("/_sim/fault", self._http_fault), web.get("/_sim/journal", self._http_journal),
                        web.post("/_sim/step", self._http_step), web.post("/_sim/advance", self._http_advance),
                        web.get("/_sim/status", self._http_status)])
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        if self.speed:
            self._replay_task = asyncio.get_running_loop().create_task(self.replayer.run(self.speed))
        return self.urls()

    async def stop(self) -> None:
        if self._replay_task:
            self._replay_task.cancel()
        await self.hub.disconnect()
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    def urls(self) -> dict[str, Any]:
        """Per venue {rest, ws} on 127.0.0.1, plus the control endpoint; pass to ccxt_overrides()."""
        http, ws = f"http://{HOST}:{self.port}", f"ws://{HOST}:{self.port}"
        return {"upbit": {"rest": f"{http}/upbit", "ws": f"{ws}/upbit/websocket/v1"},
                "binance": {"rest": f"{http}/binance", "ws": f"{ws}/binance/stream"},
                "binance_usdm": {"rest": f"{http}/binance_usdm", "ws": f"{ws}/binance_usdm"},
                "control": f"{http}/_sim"}

    def clock_ms(self) -> int:
        """The venues' clock: the host's, shifted by a `clock` fault (what preflight measures)."""
        return int(time.time() * 1000) + self.faults.clock_offset_ms

    # ---- market data ----
    def _publish(self, book: Book) -> None:
        self.board.publish(book)
        self.engine.match_resting(book)

    def _on_fill(self, order: SimOrder, fills: tuple[tuple[float, float], ...]) -> None:
        """The simulator's own fills are the only trades it knows: Upbit streams them as trade frames."""
        req = order.request
        if req.venue == "upbit":
            for i, (price, qty) in enumerate(fills):
                self.upbit_ws.send_trade(f"KRW-{req.symbol}", price, qty, req.side, self.engine.clock_ms(),
                                         order.seq * 1000 + i)

    def step(self) -> Book | None:
        """Publish the next recorded book (None at the end). Call on the server's loop."""
        return self.replayer.step()

    def advance_to(self, ts_ms: int) -> int:
        """Publish every book up to `ts_ms`; return how many."""
        return self.replayer.advance_to(ts_ms)

    def publish(self, book: Book) -> None:
        """Publish a book that is not in the recording (tests use it to set an exact state)."""
        self._publish(book.validate())

    def _gap(self, venue: str, skip: int) -> None:
        self.board.gaps_pending[venue] = self.board.gaps_pending.get(venue, 0) + skip

    # ---- faults and journal ----
    async def fault(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Apply a fault command (see sim.faults); disconnect closes the venue's WebSocket clients."""
        result = self.faults.apply(cmd)
        if cmd.get("kind") == "disconnect":
            result["closed"] = await self.hub.disconnect(cmd.get("venue"))
        return result

    def journal(self, kind: str | None = None) -> list[dict[str, Any]]:
        return self.journal_log.entries(kind)

    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler) -> web.StreamResponse:
        venue = request.path.split("/", 2)[1] if request.path.count("/") >= 1 else ""
        if venue in VENUES:
            self.requests[venue] = self.requests.get(venue, 0) + 1
        if venue not in VENUES or request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        latency = self.faults.venues[venue].latency_ms
        if latency:
            await asyncio.sleep(latency / 1000)
        fault = self.faults.http_error(venue)
        if fault is not None:
            if fault.after:  # the venue did the work; only the answer is lost on the way back
                try:
                    await handler(request)
                except web.HTTPException:
                    pass
            self.journal_log.append("fault", venue=venue, status=fault.status, path=request.path,
                                    after=fault.after)
            return self._dated(fault_response(fault.status, venue, fault.retry_after_s))
        return self._dated(await handler(request))

    def _dated(self, response: web.StreamResponse) -> web.StreamResponse:
        # The venue's own clock in the Date header: Upbit has no time endpoint, so preflight reads it.
        response.headers["Date"] = formatdate(self.clock_ms() / 1000, usegmt=True)
        return response

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, ValueError):
            raise BadFault(f"{request.path}: body is not JSON") from None
        if not isinstance(body, dict):
            raise BadFault(f"{request.path}: body must be a JSON object")
        return body

    async def _http_fault(self, request: web.Request) -> web.Response:
        try:
            return json_response(await self.fault(await self._json_body(request)))
        except BadFault as err:
            return json_response({"ok": False, "error": str(err)}, status=400)

    async def _http_journal(self, request: web.Request) -> web.Response:
        return json_response(self.journal(request.query.get("kind")))

    async def _http_step(self, request: web.Request) -> web.Response:
        book = self.step()
        return json_response({"published": None if book is None else
                              {"venue": book.venue, "symbol": book.symbol, "ts_ms": book.ts_ms}})

    async def _http_advance(self, request: web.Request) -> web.Response:
        try:
            body = await self._json_body(request)
            ts_ms = int(body["ts_ms"])
        except (BadFault, KeyError, ValueError, TypeError):
            return json_response({"ok": False, "error": "/_sim/advance: body must be {\"ts_ms\": <int>}"}, 400)
        return json_response({"ok": True, "published": self.advance_to(ts_ms)})

    async def _http_status(self, request: web.Request) -> web.Response:
        return json_response({"published": self.replayer.published, "last_ts_ms": self.replayer.last_ts_ms,
                              "requests": dict(self.requests),
                              "clients": {v: self.hub.count(v) for v in VENUES},
                              "markets": {v: list(c) for v, c in self.board.markets.items()}})


class SimThread:
    """Runs a SimServer on its own event loop in a daemon thread, for synchronous tests and tools."""

    def __init__(self, books: Iterable[Book], **kwargs: Any) -> None:
        self.server = SimServer(books, **kwargs)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="exchange-sim", daemon=True)

    def _call(self, coro_or_fn, *args: Any) -> Any:
        if asyncio.iscoroutinefunction(coro_or_fn):
            return asyncio.run_coroutine_threadsafe(coro_or_fn(*args), self.loop).result(timeout=30)

        async def wrap() -> Any:
            return coro_or_fn(*args)
        return asyncio.run_coroutine_threadsafe(wrap(), self.loop).result(timeout=30)

    def start(self) -> dict[str, Any]:
        self._thread.start()
        return self._call(self.server.start)

    def stop(self) -> None:
        try:
            self._call(self.server.stop)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)

    def urls(self) -> dict[str, Any]:
        return self.server.urls()

    def step(self) -> Book | None:
        return self._call(self.server.step)

    def advance_to(self, ts_ms: int) -> int:
        return self._call(self.server.advance_to, ts_ms)

    def publish(self, book: Book) -> None:
        self._call(self.server.publish, book)

    def fault(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return self._call(self.server.fault, cmd)

    def journal(self, kind: str | None = None) -> list[dict[str, Any]]:
        return self.server.journal(kind)

    def __enter__(self) -> "SimThread":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
