"""Binance bookTicker frames (spot and USDT-M) -> one-level Books (best bid and ask)."""
from __future__ import annotations

from pathlib import Path

from domain.book import BadBook, Book
from marketdata.errors import DataError
from marketdata.importers.binance_depth import venue_from_name
from marketdata.importers.wire import field, number, read_frames


def read_binance_book_ticker(path: str | Path, *, quote: str = "USDT") -> list[Book]:
    """Best bid/ask Books of `quote` markets; ts is the event time E, or the receive time on spot
    (spot bookTicker carries no timestamp). Update ids u must increase per symbol."""
    path = Path(path)
    venue = venue_from_name(path).value
    last_u: dict[str, int] = {}
    books = []
    for frame in read_frames(path):
        data = frame.body.get("data", frame.body) if isinstance(frame.body, dict) else None
        stream = frame.body.get("stream", "") if isinstance(frame.body, dict) else ""
        if not isinstance(data, dict) or not (data.get("e") == "bookTicker" or stream.endswith("@bookTicker")):
            continue
        symbol = str(field(data, "s", path, frame.line))
        if not symbol.endswith(quote):
            continue
        u = int(number(field(data, "u", path, frame.line), path, frame.line, "u"))
        if u <= last_u.get(symbol, -1):
            raise DataError(path, frame.line, f"{symbol}: update id u={u} does not increase (previous "
                            f"{last_u[symbol]})")
        last_u[symbol] = u
        ts = int(number(data["E"], path, frame.line, "E")) if "E" in data else frame.recv_ms
        bid = (number(field(data, "b", path, frame.line), path, frame.line, "b"),
               number(field(data, "B", path, frame.line), path, frame.line, "B"))
        ask = (number(field(data, "a", path, frame.line), path, frame.line, "a"),
               number(field(data, "A", path, frame.line), path, frame.line, "A"))
        try:
            books.append(Book(venue, symbol[: -len(quote)], ts, (bid,), (ask,)).validate())
        except BadBook as exc:
            raise DataError(path, frame.line, str(exc)) from None
    if not books:
        raise DataError(path, None, f"no {quote} bookTicker frames found")
    return books
