"""CLI: convert one recorded source file to our Parquet format (importer picked from the file name).

    python -m marketdata.convert SRC DEST.parquet [--book-ticker]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from marketdata.errors import DataError
from marketdata.importers import importer_for
from marketdata.parquet_books import write_books
from marketdata.parquet_candles import write_candles


def convert(src: Path, dest: Path, *, book_ticker: bool = False) -> tuple[str, int]:
    """Import `src` completely (so a bad file writes nothing), then write `dest`; returns (kind, rows)."""
    kind, reader = importer_for(src, book_ticker=book_ticker)
    records = sorted(reader(src), key=lambda r: r.ts_ms)  # stable: file order within a millisecond
    write = write_candles if kind == "candles" else write_books
    return kind, write(dest, records, source=src.name, synthetic=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m marketdata.convert", description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--book-ticker", action="store_true", help="Binance captures: bookTicker, not depth")
    args = parser.parse_args(argv)
    try:
        kind, n = convert(args.src, args.dest, book_ticker=args.book_ticker)
    except (DataError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.src} -> {args.dest}: {n} {kind} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
