"""ExchangeFeedActor: one per venue; ccxt.pro order books in, coalesced batches out (latest book per symbol wins).

A Ray call costs about 0.5-1 ms, so books are not forwarded one by one: every `flush_ms` each sink gets
one call with the latest book of each of its symbols that changed since the last flush.
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


def book_from_ccxt(venue: str, coin: str, ob: dict) -> Book:
    """Convert a ccxt order book to a domain Book at the edge; raises ValueError naming venue and coin."""
    try:
        return Book(venue, coin, int(ob["timestamp"]), tuple((float(p), float(q)) for p, q, *_ in ob["bids"]),
                    tuple((float(p), float(q)) for p, q, *_ in ob["asks"])).validate()
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"feed {venue} {coin}: malformed order book ({err})") from err


@ray.remote(num_cpus=0)
class ExchangeFeedActor:
    """Watches `symbols` (coin -> ccxt symbol, from paper.universe) on `venue` through ccxt.pro and fans
    batches out to `sinks` [(handle, coins or None)]; with `record_path` it also writes every forwarded
    book to Parquet (what the strategies saw is what a backtest of the recording replays)."""

    def __init__(self, venue: str, ccxt_config: dict[str, Any], symbols: dict[str, str],
                 sinks: list[tuple[Any, frozenset[str] | None]], flush_ms: int = 20, record_path: str | None = None,
                 synthetic: bool = False, telemetry: tuple[Any, Any] | None = None):
        if venue not in CCXT_ID:
            raise ValueError(f"feed: venue {venue!r} unknown; expected one of {tuple(v.value for v in CCXT_ID)}")
        self.venue, self.config, self.symbols, self.sinks = venue, ccxt_config, symbols, sinks
        self.flush_s = flush_ms / 1000          # 0: no timer, the caller flushes (lockstep replays)
        self.latest: dict[str, tuple[Book, float]] = {}
        self.seen_ts: dict[str, int] = {}       # coin -> venue time of the newest book received
        self.heard: set[str] = set()            # coins whose stream has answered at all (snapshot included)
        self.staged: dict[str, tuple[Book, float]] = {}
        self.counts = {"updates": 0, "batches": 0, "calls": 0, "resyncs": 0, "reconnects": 0, "malformed": 0,
                       "unstamped": 0}
        self.exchange = None
        self.tasks: list[asyncio.Task] = []
        self.telemetry = Telemetry(*telemetry[:1], f"feed-{venue}", alerts=telemetry[1]) if telemetry else None
        self.recorder = None
        if record_path is not None:
            from marketdata.parquet_books import BookWriter
            self.recorder = BookWriter(record_path, source=f"recorded {venue} feed", synthetic=synthetic,
                                       rows_per_group=10_000)

    async def start(self) -> None:
        self.exchange = getattr(ccxtpro, CCXT_ID[self.venue])({**self.config, "enableRateLimit": False})
        await self.exchange.load_markets()
        self.tasks = [asyncio.create_task(self._watch(c, s)) for c, s in self.symbols.items()]
        if self.flush_s > 0:
            self.tasks.append(asyncio.create_task(self._flush_loop()))

    async def ready(self) -> bool:
        """Started and watching (starts it the first time: a supervisor's restart calls this too)."""
        if self.exchange is None:
            await self.start()
        return True

    async def _watch(self, coin: str, symbol: str) -> None:
        backoff = 0.1
        while True:
            try:
                ob = await self.exchange.watch_order_book(symbol)
                self.heard.add(coin)
                if ob.get("timestamp") is None:   # a REST snapshot before the first stream event: no venue time yet
                    self.counts["unstamped"] += 1
                    continue
                book = book_from_ccxt(self.venue, coin, ob)
                self.latest[coin] = (book, time.time())
                self.seen_ts[coin] = book.ts_ms
                self.counts["updates"] += 1
                if self.telemetry is not None:
                    self.telemetry.inc("book_updates", venue=self.venue)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except ccxt.ChecksumError as err:   # sequence gap: ccxt dropped the book; watching again resyncs
                self.counts["resyncs"] += 1
                log.warning("feed %s %s: %s; resyncing", self.venue, symbol, err)
                self._alert("P2", "feed_resync", f"{self.venue} {symbol}: sequence gap, book resynced", coin)
            except ccxt.NetworkError as err:     # disconnect or stall: reconnect with backoff
                self.counts["reconnects"] += 1
                log.warning("feed %s %s: %s; reconnecting in %.1fs", self.venue, symbol, err, backoff)
                self._alert("P1", "feed_reconnect", f"{self.venue} {symbol}: {type(err).__name__}; "
                            f"reconnecting in {backoff:.1f}s", coin)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            except (ValueError, ccxt.BaseError) as err:  # a frame we cannot read: log, skip, carry on
                self.counts["malformed"] += 1
                log.error("feed %s %s: skipped a bad update: %s", self.venue, symbol, err)
                self._alert("P2", "feed_malformed", f"{self.venue} {symbol}: skipped a bad update: {err}", coin)
                await asyncio.sleep(backoff)

    def _alert(self, severity: str, kind: str, message: str, coin: str) -> None:
        if self.telemetry is not None:
            self.telemetry.alert(severity, kind, message, symbol=coin)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            self.flush()

    def flush(self) -> int:
        """Send each sink the latest books of its symbols, with the oldest receive time (for latency)."""
        batch = self._take()
        self._send(batch, self.sinks)
        return len(batch)

    def _take(self) -> dict[str, tuple[Book, float]]:
        batch, self.latest = self.latest, {}
        if batch:
            self.counts["batches"] += 1
            if self.recorder is not None:
                self.recorder.extend(b for b, _ in batch.values())
        return batch

    def _send(self, batch: dict[str, tuple[Book, float]], sinks) -> list:
        refs = []
        for handle, wanted in sinks:
            part = [(b, t) for c, (b, t) in batch.items() if wanted is None or c in wanted]
            if part:
                refs.append(handle.on_books.remote([b for b, _ in part], min(t for _, t in part)))
                self.counts["calls"] += 1
        return refs

    def set_sinks(self, sinks: list[tuple[Any, frozenset[str] | None]],
                  telemetry: tuple[Any, Any] | None = None) -> None:
        """After a restart elsewhere: the current coordinator and strategy handles (and telemetry sinks)."""
        self.sinks = sinks
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
        self.flush()
        if self.recorder is not None:
            self.recorder.close()
        if self.telemetry is not None:
            self.telemetry.close()
        if self.exchange is not None:
            await self.exchange.close()
        return dict(self.counts)

    def stats(self) -> dict[str, int]:
        return dict(self.counts)
