"""ExchangeFeedActor: one per venue; ccxt.pro order books in, coalesced batches out (latest book per symbol wins).

A Ray call costs about 0.5-1 ms, so books are not forwarded one by one: every `flush_ms` each sink gets
one call with the latest book of each of its symbols that changed since the last flush. A sink still
busy with its previous call gets nothing then: its books wait, newer ones replacing older, for the
first flush after it is done (one call in flight per sink, so a slow sink gets bigger batches, not
a queue of calls to work through).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import ccxt
import ccxt.pro as ccxtpro
import ray

from actors.telemetry import Telemetry
from domain.book import Book
from domain.venues import CCXT_ID

log = logging.getLogger("actors.feed")
MAX_BACKOFF_S = 5.0
STALE_S = 10.0        # real venues push a busy book many times a second; a whole connection silent this long is stalled
# The message hash on which ccxt.pro (4.5.90) resolves a symbol's order book, by venue.
BOOK_HASH = {"upbit": "orderbook:", "binance": "orderbook::", "binance_usdm": "orderbook::"}


def book_from_ccxt(venue: str, coin: str, ob: dict) -> Book:
    """Convert a ccxt order book to a domain Book at the edge; raises ValueError naming venue and coin."""
    try:
        return Book(venue, coin, int(ob["timestamp"]), _levels(ob["bids"]), _levels(ob["asks"])).validate()
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise ValueError(f"feed {venue} {coin}: malformed order book ({err})") from err


def exchange_config(config: dict[str, Any]) -> dict[str, Any]:
    """The ccxt.pro config the feed runs with: no client-side rate limit, and WebSocket frames not
    compressed unless `config` asks (options.ws.compress): inflating each frame costs ~40 us of the
    ~270 us a Binance update costs the feed, for bandwidth a feed of ~100 symbols does not need."""
    options = dict(config.get("options") or {})
    options["ws"] = {"compress": 0, **(options.get("ws") or {})}
    return {**config, "enableRateLimit": False, "options": options}


def _levels(side: list) -> tuple[tuple[float, float], ...]:
    """(price, qty) of each ccxt level (a third field, an order count, dropped); indexing a list
    comprehension is about 2.5x cheaper than unpacking `p, q, *_` in a generator."""
    return tuple([(float(level[0]), float(level[1])) for level in side])


def _part(batch: dict[str, tuple[Book, float]], wanted: frozenset[str] | None) -> dict[str, tuple[Book, float]]:
    """The books of a batch that a sink wanting `wanted` coins (None: all) gets."""
    return batch if wanted is None else {c: v for c, v in batch.items() if c in wanted}


class BookStream:
    """One symbol's order books from ccxt.pro.

    The first wait, and every wait after an error, goes through watch_order_book: it subscribes,
    reconnects and resyncs. Later waits take the future ccxt resolves for the symbol on the connection
    that carries it, while that connection is ccxt's live one and the subscription stands (ccxt drops
    it on a sequence gap): the same books and errors without watch_order_book's per-call bookkeeping
    (about 50 us an update on Binance, 70 on Upbit, which rebuilds its whole subscription list).
    No update is missed in between: the next future is taken before the feed yields to the loop.
    """

    def __init__(self, exchange: Any, venue: str, symbol: str):
        self.exchange, self.symbol = exchange, symbol
        self.key = BOOK_HASH[venue] + symbol
        self.client: Any = None
        self.watches = 0           # calls of watch_order_book (subscribing and resyncing included)

    async def next(self) -> dict:
        client = self.client
        live = client is not None and self.exchange.clients.get(client.url) is client
        if live and self.key in client.subscriptions:
            return (await client.future(self.key)).limit()      # what watch_order_book returns
        self.client = None
        self.watches += 1
        ob = await self.exchange.watch_order_book(self.symbol)
        self.client = self._carrier()
        return ob

    def drop(self) -> None:
        """After an error: the next wait goes through watch_order_book again."""
        self.client = None

    def _carrier(self) -> Any:
        """The ccxt client whose subscriptions hold this symbol's book (None: always watch in full)."""
        return next((c for c in self.exchange.clients.values() if self.key in c.subscriptions), None)


@ray.remote(num_cpus=0)
class ExchangeFeedActor:
    """Watches `symbols` (coin -> ccxt symbol, from paper.universe) on `venue` through ccxt.pro and fans
    batches out to `sinks` [(handle, coins or None)]; with `record_path` it also writes every forwarded
    book to Parquet (what the strategies saw is what a backtest of the recording replays)."""

    def __init__(self, venue: str, ccxt_config: dict[str, Any], symbols: dict[str, str],
                 sinks: list[tuple[Any, frozenset[str] | None]], flush_ms: int = 20, record_path: str | None = None,
                 synthetic: bool = False, telemetry: tuple[Any, Any] | None = None, stale_s: float = STALE_S):
        if venue not in CCXT_ID:
            raise ValueError(f"feed: venue {venue!r} unknown; expected one of {tuple(v.value for v in CCXT_ID)}")
        self.venue, self.config, self.symbols, self.sinks = venue, ccxt_config, symbols, sinks
        self.flush_s = flush_ms / 1000          # 0: no timer, the caller flushes (lockstep replays)
        self.stale_s = stale_s                  # a connection silent this long is cut (0: never; lockstep: never)
        self.updated_at: dict[str, float] = {}  # coin -> monotonic time of its newest book
        self.latest: dict[str, tuple[Book, float]] = {}
        self.seen_ts: dict[str, int] = {}       # coin -> venue time of the newest book received
        self.heard: set[str] = set()            # coins whose stream has answered at all (snapshot included)
        self.staged: dict[str, tuple[Book, float]] = {}
        self.held: list[dict[str, tuple[Book, float]]] = [{} for _ in sinks]   # per sink: waiting for it
        self.busy: list[Any] = [None] * len(sinks)     # per sink: the ref of its call in flight
        self.counts = {"updates": 0, "batches": 0, "calls": 0, "deferred": 0, "resyncs": 0, "reconnects": 0,
                       "malformed": 0, "unstamped": 0, "stale": 0}
        self.exchange = None
        self.streams: dict[str, BookStream] = {}
        self.tasks: list[asyncio.Task] = []
        self.telemetry = Telemetry(*telemetry[:1], f"feed-{venue}", alerts=telemetry[1]) if telemetry else None
        self.recorder = None
        if record_path is not None:
            from marketdata.parquet_books import BookWriter
            self.recorder = BookWriter(record_path, source=f"recorded {venue} feed", synthetic=synthetic,
                                       rows_per_group=10_000)

    async def start(self) -> None:
        self.exchange = getattr(ccxtpro, CCXT_ID[self.venue])(exchange_config(self.config))
        await self.exchange.load_markets()
        self.streams = {c: BookStream(self.exchange, self.venue, s) for c, s in self.symbols.items()}
        self.tasks = [asyncio.create_task(self._watch(c, s)) for c, s in self.symbols.items()]
        if self.flush_s > 0:
            self.tasks.append(asyncio.create_task(self._flush_loop()))
            if self.stale_s > 0:
                self.tasks.append(asyncio.create_task(self._cut_stale()))

    async def _cut_stale(self) -> None:
        """A connection none of whose books moved for stale_s is cut, so its streams reconnect and
        resync. ccxt.pro raises nothing when a stream goes quiet (a frame it cannot parse stops that
        connection's reading until its keepalive fires, 180 s on Binance); a whole connection of books
        this quiet is a stall, not a calm market."""
        while True:
            await asyncio.sleep(max(self.stale_s / 4, 0.05))
            now, carried = time.monotonic(), {}
            for coin, stream in self.streams.items():
                if stream.client is not None and coin in self.updated_at:
                    carried.setdefault(id(stream.client), (stream.client, []))[1].append(coin)
            for client, coins in carried.values():
                silent = now - max(self.updated_at[c] for c in coins)
                if silent > self.stale_s:
                    self.counts["stale"] += 1
                    log.warning("feed %s: no book on %d streams for %.1fs; reconnecting", self.venue, len(coins), silent)
                    self._alert("P1", "feed_stale", f"{self.venue}: no book on {len(coins)} streams for {silent:.1f}s; "
                                f"connection cut, reconnecting", None)
                    client.on_error(ccxt.NetworkError(f"{self.venue}: stream silent for {silent:.1f}s"))

    async def ready(self) -> bool:
        """Started and watching (starts it the first time: a supervisor's restart calls this too)."""
        if self.exchange is None:
            await self.start()
        return True

    async def _watch(self, coin: str, symbol: str) -> None:
        backoff = 0.1
        stream = self.streams[coin]
        while True:
            try:
                ob = await stream.next()
                self.heard.add(coin)
                if ob.get("timestamp") is None:   # a REST snapshot before the first stream event: no venue time yet
                    self.counts["unstamped"] += 1
                    continue
                book = book_from_ccxt(self.venue, coin, ob)
                self.latest[coin] = (book, time.time())
                self.updated_at[coin] = time.monotonic()
                self.seen_ts[coin] = book.ts_ms
                self.counts["updates"] += 1
                if self.telemetry is not None:
                    self.telemetry.inc("book_updates", venue=self.venue)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except ccxt.ChecksumError as err:   # sequence gap: ccxt dropped the book; watching again resyncs
                stream.drop()
                self.counts["resyncs"] += 1
                log.warning("feed %s %s: %s; resyncing", self.venue, symbol, err)
                self._alert("P2", "feed_resync", f"{self.venue} {symbol}: sequence gap, book resynced", coin)
            except ccxt.NetworkError as err:     # disconnect or stall: reconnect with backoff
                stream.drop()
                self.counts["reconnects"] += 1
                log.warning("feed %s %s: %s; reconnecting in %.1fs", self.venue, symbol, err, backoff)
                self._alert("P1", "feed_reconnect", f"{self.venue} {symbol}: {type(err).__name__}; "
                            f"reconnecting in {backoff:.1f}s", coin)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            except (ValueError, ccxt.BaseError) as err:  # a frame we cannot read: log, skip, carry on
                stream.drop()
                self.counts["malformed"] += 1
                log.error("feed %s %s: skipped a bad update: %s", self.venue, symbol, err)
                self._alert("P2", "feed_malformed", f"{self.venue} {symbol}: skipped a bad update: {err}", coin)
                await asyncio.sleep(backoff)

    def _alert(self, severity: str, kind: str, message: str, coin: str | None) -> None:
        if self.telemetry is not None:
            self.telemetry.alert(severity, kind, message, symbol=coin)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            self.flush()

    def flush(self, force: bool = False) -> int:
        """Send each sink not busy with its last call the latest books of its symbols, with the oldest
        receive time (for latency); a busy sink's books wait for a later flush (`force`: send anyway)."""
        batch = self._take()
        self._hold(batch)
        self._send_held(force)
        return len(batch)

    def _take(self) -> dict[str, tuple[Book, float]]:
        batch, self.latest = self.latest, {}
        if batch:
            self.counts["batches"] += 1
            if self.recorder is not None:
                self.recorder.extend(b for b, _ in batch.values())
        return batch

    def _hold(self, batch: dict[str, tuple[Book, float]]) -> None:
        """Add the batch to what each sink waits for (a coin's newer book replaces the one held)."""
        if not batch:
            return
        for held, (_, wanted) in zip(self.held, self.sinks):
            held.update(_part(batch, wanted))

    def _send_held(self, force: bool) -> None:
        waiting = [i for i, held in enumerate(self.held) if held]
        idle = set(waiting) if force else self._idle(waiting)
        for i in waiting:
            if i in idle:
                held, self.held[i] = self.held[i], {}
                self.busy[i] = self._call(self.sinks[i][0], held)
            else:
                self.counts["deferred"] += 1

    def _idle(self, sinks: list[int]) -> set[int]:
        """Those of `sinks` with no call in flight (one ray.wait for all, ~30 us; a call costs ~300)."""
        refs = {self.busy[i]: i for i in sinks if self.busy[i] is not None}
        idle = {i for i in sinks if self.busy[i] is None}
        if refs:
            done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0, fetch_local=False)
            idle.update(refs[r] for r in done)
        return idle

    def _call(self, handle: Any, part: dict[str, tuple[Book, float]]) -> Any:
        self.counts["calls"] += 1
        return handle.on_books.remote([b for b, _ in part.values()], min(t for _, t in part.values()))

    def _send(self, batch: dict[str, tuple[Book, float]], sinks) -> list:
        """Lockstep: every sink gets its part now (the caller waits on the refs)."""
        parts = [(handle, _part(batch, wanted)) for handle, wanted in sinks]
        return [self._call(handle, part) for handle, part in parts if part]

    def set_sinks(self, sinks: list[tuple[Any, frozenset[str] | None]],
                  telemetry: tuple[Any, Any] | None = None) -> None:
        """After a restart elsewhere: the current coordinator and strategy handles (and telemetry sinks).
        Books held for a sink go to the new sink of the same symbols; no call is in flight to a new one."""
        held = {wanted: h for (_, wanted), h in zip(self.sinks, self.held)}
        self.sinks = sinks
        self.held = [dict(held.get(wanted, {})) for _, wanted in sinks]
        self.busy = [None] * len(sinks)
        if self.telemetry is not None:
            self.telemetry.retarget(telemetry)

    def seen(self) -> dict[str, int]:
        """coin -> venue time of the newest book received (lockstep: has the instant arrived?)."""
        return dict(self.seen_ts)

    def subscribed(self) -> list[str]:
        """Coins whose stream has answered (lockstep waits for all before it replays)."""
        return sorted(self.heard)

    def reset(self) -> None:
        """Lockstep: forget the priming books, so none is forwarded ahead of its instant."""
        self.latest.clear()
        self.seen_ts.clear()
        for held in self.held:
            held.clear()

    def flush_phase(self, phase: int) -> list:
        """Lockstep flush in two phases, returning the calls' refs for the caller to wait on: phase 0 sends
        the batch to the first sink (the coordinator, which fills against it), phase 1 to the others."""
        if phase == 0:
            self.staged = self._take()
            return self._send(self.staged, self.sinks[:1])
        staged, self.staged = self.staged, {}
        return self._send(staged, self.sinks[1:])

    async def stop(self) -> dict[str, int]:
        """Stop watching, send what is left, close the connection; return the counters."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.flush(force=True)
        if self.recorder is not None:
            self.recorder.close()
        if self.telemetry is not None:
            self.telemetry.close()
        if self.exchange is not None:
            await self.exchange.close()
        return self.stats()

    def stats(self) -> dict[str, int]:
        return {**self.counts, "watches": sum(s.watches for s in self.streams.values())}
