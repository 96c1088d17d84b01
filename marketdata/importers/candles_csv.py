"""Candle CSVs (plain or .gz): `timestamp_utc,open,high,low,close,volume`, bar open time in UTC.

Venue, coin and interval come from the file name (upbit_krw-btc_5m.csv, binance_btcusdt_5m.csv).
Bars must be strictly increasing in time and on the interval grid.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from domain.symbols import UnknownSymbol, from_venue_name
from domain.venues import Venue
from marketdata.candle import Candle
from marketdata.errors import DataError
from marketdata.importers.csv_rows import num, rows

COLUMNS = ("timestamp_utc", "open", "high", "low", "close", "volume")
_NAME = re.compile(r"^(?P<venue>upbit|binance|binance_usdm)_(?P<market>[a-z0-9-]+)_(?P<n>\d+)(?P<unit>[smhd])\.csv")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def describe(path: Path) -> tuple[str, str, int]:
    """(venue, coin, interval_s) from a candle file name."""
    m = _NAME.match(path.name)
    if not m:
        raise DataError(path, None, "file name must look like <venue>_<market>_<n><s|m|h|d>.csv[.gz]")
    try:
        coin = from_venue_name(m["market"].upper()).base
    except UnknownSymbol as exc:
        raise DataError(path, None, str(exc)) from None
    return Venue(m["venue"]).value, coin, int(m["n"]) * _UNIT_S[m["unit"]]


def parse_utc_ms(text: str, path: Path, line: int) -> int:
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DataError(path, line, f"timestamp {text!r} is not an ISO date-time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(round(dt.timestamp() * 1000))


def read_candles_csv(path: str | Path) -> list[Candle]:
    """All bars of a candle CSV; DataError naming the line for anything malformed or out of order."""
    path = Path(path)
    venue, coin, interval_s = describe(path)
    out: list[Candle] = []
    for line, row in rows(path, COLUMNS):
        ts = parse_utc_ms(row["timestamp_utc"], path, line)
        bar = Candle(venue, coin, ts, interval_s, *(num(row, k, path, line) for k in COLUMNS[1:]))
        problem = bar.problem()
        if problem:
            raise DataError(path, line, problem)
        if out and ts <= out[-1].ts_ms:
            raise DataError(path, line, f"timestamp {row['timestamp_utc']} not after the previous bar")
        if ts % (interval_s * 1000):
            raise DataError(path, line, f"timestamp {row['timestamp_utc']} is not on the {interval_s}s grid")
        out.append(bar)
    if not out:
        raise DataError(path, None, "no bars")
    return out
