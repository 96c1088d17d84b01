"""`--record DIR`: the feeds write what they forward, one Parquet file per venue; at the end of the run
they are merged in time order into DIR/<run id>/books.parquet, the file a backtest profile reads
(`data: {kind: books, books: <that path>}`), so a user's paper run becomes backtest data.
"""
from __future__ import annotations

import heapq
from pathlib import Path

from marketdata.parquet_books import file_info, read_books, write_books

BOOKS_FILE = "books.parquet"


def venue_file(record_dir: Path, venue: str) -> Path:
    return Path(record_dir) / f"{venue}.parquet"


def merge(record_dir: Path, venues: list[str], source: str, synthetic: bool) -> Path:
    """Merge the venue files (each already in arrival order) by book time into one file; drop the parts."""
    parts = [venue_file(record_dir, v) for v in venues if venue_file(record_dir, v).exists()]
    out = Path(record_dir) / BOOKS_FILE
    # Arrival order within one venue can step back a few ms across symbols: sort each part, then merge.
    streams = [sorted(read_books(p), key=lambda b: b.ts_ms) for p in parts]
    write_books(out, heapq.merge(*streams, key=lambda b: b.ts_ms), source=source, synthetic=synthetic)
    file_info(out)   # read back the header: a recording that cannot be opened fails here, not in a later backtest
    for p in parts:
        p.unlink()
    return out
