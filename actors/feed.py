"""ExchangeFeedActor: one per venue; ccxt.pro order books in, coalesced batches out (latest book per symbol wins).

Books reach the sinks (strategy shards, coordinator) over the book channel (actors/book_channel.py), a
direct stream per sink, not a Ray call per batch. A book is flushed at once, or `flush_ms` after
the previous flush if that was sooner: the first book after a lull goes out alone, a burst goes out
in batches. Each sink has at most one batch in flight; while it works, its
books wait, newer ones replacing older, and go the moment it answers (a slow sink gets bigger
batches, not a queue). Lockstep replays (flush_ms 0) flush on the driver's word through Ray calls.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import ccxt
import ccxt.pro as ccxtpro
import ray

from actors.book_channel import BookOutlet
from actors.telemetry import Telemetry
from domain.book import Book
from domain.venues import CCXT_ID

log = logging.getLogger("actors.feed")
MAX_BACKOFF_S = 5.0
DRAIN_S = 5.0         # at stop, how long a sink may take to handle its last batches
# Levels a side a Book keeps: strategy.depth_levels is at most 50. ccxt.pro keeps the whole Binance book
# (a 1,000-level REST snapshot plus every diff): converting and shipping all of it on every update would
# cost the feed and every sink ~20x what the top 50 do, for levels no decision or fill reaches.
BOOK_LEVELS = 50
STALE_S = 10.0        # real venues push a busy book many times a second; a whole connection silent this long is stalled
# The message hash on which ccxt.pro (4.5.90) resolves a symbol's order book, by venue.
BOOK_HASH = {"upbit": "orderbook:", "binance": "orderbook::", "binance_usdm": "orderbook::"}


def book_from_ccxt(venue: str, coin: str, ob: dict) -> Book:
    """Convert the top BOOK_LEVELS of a ccxt order book to a domain Book at the edge; raises ValueError
    naming venue and coin."""
    try:
        return Book(venue, coin, int(ob["timestamp"]), _levels(ob["bids"][:BOOK_LEVELS]),
                    _levels(ob["asks"][:BOOK_LEVELS])).validate()
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


@dataclass
class Sink:
    """One destination of the feed's books: its actor, the coins it wants (None: all), the books waiting
    for it and (real time) its book channel."""
    handle: Any
    wanted: frozenset[str] | None
    held: dict[str, tuple[Book, float]] = field(default_factory=dict)
    outlet: BookOutlet | None = None


@ray.remote(num_cpus=0)
class ExchangeFeedActor:
    """Watches `symbols` (coin -> ccxt symbol, from paper.universe) on `venue` through ccxt.pro and fans
    batches out to `sinks` [(handle, coins or None)], each serving a book inbox (book_channel.serves_books);
    with `record_path` it also writes every forwarded book to Parquet (what the strategies saw is what a
    backtest of the recording replays)."""

    def __init__(self, venue: str, ccxt_config: dict[str, Any], symbols: dict[str, str],
                 sinks: list[tuple[Any, frozenset[str] | None]], flush_ms: float = 2, record_path: str | None = None,
                 synthetic: bool = False, telemetry: tuple[Any, Any] | None = None, stale_s: float = STALE_S):
        if venue not in CCXT_ID:
            raise ValueError(f"feed: venue {venue!r} unknown; expected one of {tuple(v.value for v in CCXT_ID)}")
        self.venue, self.config, self.symbols = venue, ccxt_config, symbols
        self.sinks = [Sink(handle, wanted) for handle, wanted in sinks]
        self.flush_s = flush_ms / 1000          # 0: the caller flushes (lockstep replays)
        self.stale_s = stale_s                  # a connection silent this long is cut (0: never; lockstep: never)
        self.timer: asyncio.TimerHandle | None = None
        self.next_flush = 0.0                   # monotonic time before which no flush starts
        self.updated_at: dict[str, float] = {}  # coin -> monotonic time of its newest book
        self.latest: dict[str, tuple[Book, float]] = {}
        self.seen_ts: dict[str, int] = {}       # coin -> venue time of the newest book received
        self.heard: set[str] = set()            # coins whose stream has answered at all (snapshot included)
        self.staged: dict[str, tuple[Book, float]] = {}
        self.counts = {"updates": 0, "batches": 0, "sends": 0, "deferred": 0, "resyncs": 0, "reconnects": 0,
                       "malformed": 0, "unstamped": 0, "stale": 0, "sink_lost": 0}
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
        await self._open_channels()
        self.streams = {c: BookStream(self.exchange, self.venue, s) for c, s in self.symbols.items()}
        self.tasks = [asyncio.create_task(self._watch(c, s)) for c, s in self.symbols.items()]
        if self.flush_s > 0 and self.stale_s > 0:
            self.tasks.append(asyncio.create_task(self._cut_stale()))

    async def _open_channels(self) -> None:
        """Real time: connect a book channel to every sink without one (lockstep sends through Ray)."""
        if self.flush_s <= 0:
            return
        fresh = [s for s in self.sinks if s.outlet is None]
        addresses = await asyncio.gather(*[s.handle.book_inbox.remote() for s in fresh])
        for sink, address in zip(fresh, addresses):
            sink.outlet = BookOutlet(tuple(address), functools.partial(self._acked, sink))
        await asyncio.gather(*[s.outlet.connect() for s in fresh])

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
                self._flush_soon()
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

    def _flush_soon(self) -> None:
        """Real time: flush now if flush_ms since the last flush is up, else when it is. Not in a
        later loop turn: the turn may first run another connection's buffered frames (ccxt.pro parses
        all of them in one callback, ~0.3 ms each), and this book would wait for all of them."""
        if self.flush_s <= 0:
            return
        now = time.monotonic()
        if now >= self.next_flush:
            self._timed_flush()
        elif self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.next_flush - now, self._timed_flush)

    def _timed_flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.next_flush = time.monotonic() + self.flush_s
        self.flush()

    def flush(self) -> int:
        """Hand each sink the latest books of its symbols; a sink with a batch in flight gets them
        when it answers. Returns how many books the batch had."""
        batch = self._take()
        for sink in self.sinks:
            if batch:
                sink.held.update(_part(batch, sink.wanted))
            if sink.held:
                self._offer(sink)
        return len(batch)

    def _take(self) -> dict[str, tuple[Book, float]]:
        batch, self.latest = self.latest, {}
        if batch:
            self.counts["batches"] += 1
            if self.recorder is not None:
                self.recorder.extend(b for b, _ in batch.values())
        return batch

    def _offer(self, sink: Sink) -> None:
        """Send the sink what it holds if its channel is free; else the books wait for its answer
        (or, with its channel lost, for a reconnect or a new sink from set_sinks)."""
        outlet = sink.outlet
        if outlet is None:                  # lockstep: the driver waits on the call
            held, sink.held = sink.held, {}
            self._call(sink.handle, held)
        elif outlet.ready:
            held, sink.held = sink.held, {}
            self.counts["sends"] += 1
            outlet.send([b for b, _ in held.values()], min(t for _, t in held.values()))
        else:
            self.counts["deferred"] += 1
            if outlet.writer is None:
                outlet.reconnect_soon(0.5)

    def _acked(self, sink: Sink) -> None:
        """The sink handled its batch: what it held meanwhile goes now."""
        if sink.held:
            self._offer(sink)

    def _call(self, handle: Any, part: dict[str, tuple[Book, float]]) -> Any:
        self.counts["sends"] += 1
        return handle.on_books.remote([b for b, _ in part.values()], min(t for _, t in part.values()))

    def _send(self, batch: dict[str, tuple[Book, float]], sinks: list[Sink]) -> list:
        """Lockstep: every sink gets its part now through Ray (the caller waits on the refs)."""
        parts = [(s.handle, _part(batch, s.wanted)) for s in sinks]
        return [self._call(handle, part) for handle, part in parts if part]

    async def set_sinks(self, sinks: list[tuple[Any, frozenset[str] | None]],
                        telemetry: tuple[Any, Any] | None = None) -> None:
        """After a restart elsewhere: the current coordinator and strategy handles (and telemetry sinks).
        Books held for a sink go to the new sink of the same symbols, over a new channel."""
        held = {s.wanted: s.held for s in self.sinks}
        for old in self.sinks:
            if old.outlet is not None:
                self.counts["sink_lost"] += old.outlet.lost
                await old.outlet.close()
        self.sinks = [Sink(handle, wanted, dict(held.get(wanted, {}))) for handle, wanted in sinks]
        if self.telemetry is not None:
            self.telemetry.retarget(telemetry)
        if self.exchange is not None and self.flush_s > 0:    # started in real time: connect now, send what waits
            await self._open_channels()
            self.flush()

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
        for sink in self.sinks:
            sink.held.clear()

    def flush_phase(self, phase: int) -> list:
        """Lockstep flush in two phases, returning the calls' refs for the caller to wait on: phase 0 sends
        the batch to the first sink (the coordinator, which fills against it), phase 1 to the others."""
        if phase == 0:
            self.staged = self._take()
            return self._send(self.staged, self.sinks[:1])
        staged, self.staged = self.staged, {}
        return self._send(staged, self.sinks[1:])

    async def stop(self) -> dict[str, int]:
        """Stop watching, send what is left and wait for the sinks to handle it, close the connections;
        return the counters."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        outlets = [s.outlet for s in self.sinks if s.outlet is not None]
        await asyncio.gather(*[o.drained(DRAIN_S) for o in outlets])
        self.flush()
        await asyncio.gather(*[o.drained(DRAIN_S) for o in outlets])
        for outlet in outlets:
            await outlet.close()
        if self.recorder is not None:
            self.recorder.close()
        if self.telemetry is not None:
            self.telemetry.close()
        if self.exchange is not None:
            await self.exchange.close()
        return self.stats()

    def stats(self) -> dict[str, int]:
        lost = self.counts["sink_lost"] + sum(s.outlet.lost for s in self.sinks if s.outlet is not None)
        return {**self.counts, "sink_lost": lost, "watches": sum(s.watches for s in self.streams.values())}
