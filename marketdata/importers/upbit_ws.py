"""Upbit WebSocket orderbook frames (SIMPLE short keys or DEFAULT long keys) -> Books.

Every Upbit orderbook frame carries the whole top of book, so each frame is one snapshot.
Only markets quoted in `quote` (KRW by default) become Books; KRW-USDT becomes symbol USDT.
"""
from __future__ import annotations

from pathlib import Path

from domain.book import BadBook, Book
from domain.venues import Venue
from marketdata.errors import DataError
from marketdata.importers.wire import field, number, read_frames

SIMPLE = {"type": "ty", "code": "cd", "timestamp": "tms", "units": "obu",
          "ask_price": "ap", "bid_price": "bp", "ask_size": "as", "bid_size": "bs"}
DEFAULT = {"type": "type", "code": "code", "timestamp": "timestamp", "units": "orderbook_units",
           "ask_price": "ask_price", "bid_price": "bid_price", "ask_size": "ask_size", "bid_size": "bid_size"}


def orderbook_frame_to_book(frame: dict, path: Path, line: int, quote: str = "KRW") -> Book | None:
    """One decoded frame -> Book; None for frames that are not orderbooks of a `quote` market."""
    if not isinstance(frame, dict) or "status" in frame:
        return None  # {"status":"UP"} keepalive
    keys = SIMPLE if "ty" in frame else DEFAULT
    if field(frame, keys["type"], path, line) != "orderbook":
        return None
    code = str(field(frame, keys["code"], path, line))
    market_quote, _, coin = code.partition("-")
    if market_quote != quote:
        return None
    units = field(frame, keys["units"], path, line)
    if not isinstance(units, list) or not units:
        raise DataError(path, line, f"{code}: {keys['units']} must be a non-empty list")
    bids, asks = [], []
    for i, unit in enumerate(units):
        where = f"{code} {keys['units']}[{i}]"
        asks.append((number(field(unit, keys["ask_price"], path, line), path, line, f"{where}.{keys['ask_price']}"),
                     number(field(unit, keys["ask_size"], path, line), path, line, f"{where}.{keys['ask_size']}")))
        bids.append((number(field(unit, keys["bid_price"], path, line), path, line, f"{where}.{keys['bid_price']}"),
                     number(field(unit, keys["bid_size"], path, line), path, line, f"{where}.{keys['bid_size']}")))
    ts = int(number(field(frame, keys["timestamp"], path, line), path, line, keys["timestamp"]))
    try:
        return Book(Venue.UPBIT.value, coin, ts, tuple(bids), tuple(asks)).validate()
    except BadBook as exc:
        raise DataError(path, line, str(exc)) from None


def read_upbit_ws(path: str | Path, *, quote: str = "KRW") -> list[Book]:
    """All orderbook snapshots of `quote` markets in an Upbit capture, in file order."""
    path = Path(path)
    books = []
    for frame in read_frames(path):
        book = orderbook_frame_to_book(frame.body, path, frame.line, quote)
        if book is not None:
            books.append(book)
    if not books:
        raise DataError(path, None, f"no {quote} orderbook frames found")
    return books
