"""Test support: a tiny loader for the recorded 20-level JSONL books, and simulator fixtures' helpers."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from domain.book import Book

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
