"""Upbit pipe CSV `price|quantity|type|timestamp` in Korea time (UTC+9); type 1 = ask, 0 = bid.

Rows sharing a timestamp form one snapshot. The coin comes from the file name (…_upbit_krw-eth_…).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from domain.book import BadBook, Book
from domain.venues import Venue
from marketdata.errors import DataError
from marketdata.importers.csv_rows import num, rows

KST = timezone(timedelta(hours=9))
COLUMNS = ("price", "quantity", "type", "timestamp")


def coin_from_name(path: Path) -> str:
    m = re.search(r"upbit_krw-([a-z0-9]+)_", path.name)
    if not m:
        raise DataError(path, None, "file name must contain upbit_krw-<coin>_")
    return m[1].upper()


def _kst_ms(text: str, path: Path, line: int) -> int:
    try:
        return int(datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=KST).timestamp() * 1000)
    except ValueError:
        raise DataError(path, line, f"timestamp {text!r} is not 'YYYY-MM-DD HH:MM:SS'") from None


def read_upbit_kst_csv(path: str | Path) -> list[Book]:
    """All snapshots, converted to UTC, each validated (sorted best-first, uncrossed)."""
    path = Path(path)
    coin = coin_from_name(path)
    books: list[Book] = []
    current: tuple[int, int, list, list] | None = None  # (ts, first line, bids, asks)

    def close_snapshot() -> None:
        ts, first, bids, asks = current
        if not bids or not asks:
            raise DataError(path, first, f"snapshot at {ts} has {len(bids)} bid and {len(asks)} ask rows")
        if books and ts <= books[-1].ts_ms:
            raise DataError(path, first, "timestamp not after the previous snapshot (rows out of order)")
        try:
            books.append(Book(Venue.UPBIT.value, coin, ts, tuple(bids), tuple(asks)).validate())
        except BadBook as exc:
            raise DataError(path, f"lines {first}-{line - 1}", str(exc)) from None

    line = 0
    for line, row in rows(path, COLUMNS, delimiter="|"):
        ts = _kst_ms(row["timestamp"], path, line)
        if current is None or ts != current[0]:
            if current is not None:
                close_snapshot()
            current = (ts, line, [], [])
        side = row["type"].strip()
        if side not in ("0", "1"):
            raise DataError(path, line, f"type {row['type']!r}: expected 1 (ask) or 0 (bid)")
        (current[3] if side == "1" else current[2]).append((num(row, "price", path, line),
                                                            num(row, "quantity", path, line)))
    if current is None:
        raise DataError(path, None, "no rows")
    line += 1
    close_snapshot()
    return books
