"""One importer per recorded source format; `importer_for` picks one from a file name."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from marketdata.errors import DataError
from marketdata.importers.binance_book_ticker import read_binance_book_ticker
from marketdata.importers.binance_depth import read_binance_depth
from marketdata.importers.books_jsonl import read_books_jsonl
from marketdata.importers.candles_csv import read_candles_csv
from marketdata.importers.upbit_kst_csv import read_upbit_kst_csv
from marketdata.importers.upbit_ws import read_upbit_ws

__all__ = ["importer_for", "read_binance_book_ticker", "read_binance_depth", "read_books_jsonl",
           "read_candles_csv", "read_upbit_kst_csv", "read_upbit_ws"]


def importer_for(path: str | Path, *, book_ticker: bool = False) -> tuple[str, Callable]:
    """("books" | "candles", reader) for a source file, chosen by its name."""
    name = Path(path).name
    if name.endswith((".csv", ".csv.gz")) and "_kst" in name:
        return "books", read_upbit_kst_csv
    if name.endswith((".csv", ".csv.gz")):
        return "candles", read_candles_csv
    if name.endswith(".jsonl"):
        return "books", read_books_jsonl
    if name.startswith("upbit_ws"):
        return "books", read_upbit_ws
    if name.startswith("binance") and "_ws_" in name:
        return "books", (read_binance_book_ticker if book_ticker else read_binance_depth)
    raise DataError(path, None, "no importer for this file name (expected a candle CSV, *_kst.csv, *.jsonl, "
                    "upbit_ws_*.txt or binance_*_ws_*.txt)")
