"""Test support: a tiny loader for the recorded 20-level JSONL books, and helpers to run ccxt against the sim."""
from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import ccxt.pro as ccxtpro

from domain.book import Book
from domain.venues import CCXT_ID
from sim import SimServer, ccxt_overrides
from sim.auth import ApiKey

KEY, SECRET = "sim-test-key", "sim-test-secret-0123456789abcdef0123456789"


def load_jsonl_books(path: Path, venue: str | None = None) -> list[Book]:
    """Books from a `{"timestamp","exchange","symbol","bids","asks"}` file; `venue` relabels them."""
    books = []
    for row, line in enumerate(path.read_text().splitlines(), 1):
        try:
            raw = json.loads(line)
            ts = datetime.fromisoformat(raw["timestamp"]).replace(tzinfo=timezone.utc)
            coin = raw["symbol"].split("/")[0]
            books.append(Book(venue or raw["exchange"], coin, int(ts.timestamp() * 1000),
                              tuple((float(p), float(q)) for p, q in raw["bids"]),
                              tuple((float(p), float(q)) for p, q in raw["asks"])).validate())
        except (KeyError, ValueError, TypeError) as err:
            raise ValueError(f"{path}:{row}: not a recorded book line ({err})") from err
    return books


def recorded_books(data: Path) -> list[Book]:
    """Upbit KRW-BTC and Binance BTCUSDT books in time order; the Binance ones are also replayed as
    the USDT-M venue (there is no perp recording: same prices, labelled binance_usdm)."""
    upbit = load_jsonl_books(data / "books" / "2025-08-24_upbit_krw-btc_20lvl.jsonl")
    spot = load_jsonl_books(data / "books" / "2025-08-24_binance_btcusdt_20lvl.jsonl")
    perp = [replace(b, venue="binance_usdm", ts_ms=b.ts_ms + 1) for b in spot]
    return sorted(upbit + spot + perp, key=lambda b: (b.ts_ms, b.venue))


# ---- running the simulator and ccxt against it ----
SYMBOL = {"upbit": "BTC/KRW", "binance": "BTC/USDT", "binance_usdm": "BTC/USDT:USDT"}
BALANCES = {("upbit", KEY): {"KRW": 100_000_000.0, "BTC": 1.0},
            ("binance", KEY): {"USDT": 2_000_000.0, "BTC": 1.0},
            ("binance_usdm", KEY): {"USDT": 2_000_000.0}}


@asynccontextmanager
async def running_sim(data: Path, **kwargs: Any) -> AsyncIterator[SimServer]:
    """A started SimServer over the recorded books with one funded test key."""
    kwargs.setdefault("keys", [ApiKey(KEY, SECRET)])
    kwargs.setdefault("balances", BALANCES)
    sim = SimServer(recorded_books(data), **kwargs)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@asynccontextmanager
async def exchange(sim: SimServer, venue: str, secret: str = SECRET) -> AsyncIterator[Any]:
    """A ccxt.pro exchange pointed at the simulator through configuration only."""
    ex = getattr(ccxtpro, CCXT_ID[venue])({**ccxt_overrides(sim.urls(), venue), "apiKey": KEY,
                                          "secret": secret, "enableRateLimit": False})
    try:
        yield ex
    finally:
        await ex.close()


def step_venue(sim: SimServer, venue: str) -> Book:
    """Publish recorded books until one of `venue` goes out; return it."""
    while (book := sim.step()) is not None:
        if book.venue == venue:
            return book
    raise AssertionError(f"recording has no more {venue} books")


def levels(side: list) -> list[tuple[float, float]]:
    return [(float(p), float(q)) for p, q, *_ in side]


async def watch_until(ex: Any, symbol: str, book: Book, timeout: float = 5.0) -> dict:
    """Watch until ccxt's book equals `book` level for level; fail with the last difference."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ob = await asyncio.wait_for(ex.watch_order_book(symbol), deadline - time.monotonic())
        last = ob
        if levels(ob["bids"]) == list(book.bids) and levels(ob["asks"]) == list(book.asks):
            return ob
    raise AssertionError(f"ccxt book never matched the one published at {book.ts_ms}: "
                         f"last best {last and last['bids'][:1]} / {last and last['asks'][:1]}")


async def poll(check: Callable[[], Any], timeout: float = 5.0, every: float = 0.01) -> Any:
    """Return check()'s first truthy value, polling; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")
