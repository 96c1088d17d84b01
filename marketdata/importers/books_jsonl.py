"""20-level book snapshots, one JSON object a line: {"timestamp" (ISO UTC), "exchange", "symbol", "bids", "asks"}."""
from __future__ import annotations

import json
from pathlib import Path

from domain.book import BadBook, Book
from domain.symbols import UnknownSymbol, from_venue_name
from domain.venues import Venue
from marketdata.errors import DataError
from marketdata.importers.candles_csv import parse_utc_ms
from marketdata.importers.wire import field, number


def _side(obj: dict, key: str, path: Path, line: int) -> tuple[tuple[float, float], ...]:
    raw = field(obj, key, path, line)
    if not isinstance(raw, list) or not raw:
        raise DataError(path, line, f"{key} must be a non-empty list of [price, qty]")
    out = []
    for i, lvl in enumerate(raw):
        if not isinstance(lvl, list) or len(lvl) != 2:
            raise DataError(path, line, f"{key}[{i}] must be [price, qty], got {lvl!r}")
        out.append((number(lvl[0], path, line, f"{key}[{i}] price"), number(lvl[1], path, line, f"{key}[{i}] qty")))
    return tuple(out)


def read_books_jsonl(path: str | Path) -> list[Book]:
    """Every snapshot in the file, validated (sorted, uncrossed) and in time order."""
    path = Path(path)
    books: list[Book] = []
    with open(path, encoding="utf-8") as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except ValueError as exc:
                raise DataError(path, line, f"truncated or malformed JSON ({exc})") from None
            try:
                venue = Venue(str(field(obj, "exchange", path, line)).lower()).value
                coin = from_venue_name(str(field(obj, "symbol", path, line))).base
            except (ValueError, UnknownSymbol) as exc:
                raise DataError(path, line, str(exc)) from None
            ts = parse_utc_ms(str(field(obj, "timestamp", path, line)), path, line)
            try:
                book = Book(venue, coin, ts, _side(obj, "bids", path, line), _side(obj, "asks", path, line)).validate()
            except BadBook as exc:
                raise DataError(path, line, str(exc)) from None
            if books and ts < books[-1].ts_ms:
                raise DataError(path, line, f"timestamp {obj['timestamp']} is before the previous line's")
            books.append(book)
    if not books:
        raise DataError(path, None, "no book snapshots")
    return books
