"""The on-disk format for recorded L2 books: backtests read it, the recorder and generators write it.

One row per book: ts_ms int64 (UTC epoch ms), venue and symbol dictionary-encoded strings, and
bid_px/bid_qty/ask_px/ask_qty as list<float64> best first. Rows are sorted by ts_ms (stable) and
the file metadata key `arbitrage_lite` carries {"format_version", "kind", "synthetic", "source"} and,
when the writer ranked its coins (the synthetic generator does), "symbols" in that order.
Reading streams row group by row group, so memory stays bounded by one group.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from domain.book import Book
from domain.symbols import FX_SYMBOL
from marketdata.errors import DataError

FORMAT_VERSION = 1
META_KEY = b"arbitrage_lite"
LEVEL_COLUMNS = ("bid_px", "bid_qty", "ask_px", "ask_qty")
BOOK_SCHEMA = pa.schema([
    ("ts_ms", pa.int64()),
    ("venue", pa.dictionary(pa.int32(), pa.string())),
    ("symbol", pa.dictionary(pa.int32(), pa.string())),
    *[(name, pa.list_(pa.float64())) for name in LEVEL_COLUMNS],
])


@dataclass(frozen=True)
class FileInfo:
    """What a market data file says about itself (from its metadata and footer)."""

    kind: str
    format_version: int
    synthetic: bool
    source: str
    rows: int
    row_groups: int
    symbols: tuple[str, ...] | None = None   # the writer's ranking of the coins, when it gave one


@dataclass(frozen=True, eq=False)
class BookColumns:
    """A batch of books as numpy arrays for vectorised backtests.

    venue_code/symbol_code index the `venues`/`symbols` tables; px/qty are (n, L) best first,
    padded with NaN prices and 0 quantities where a row has fewer than L levels.
    """

    ts_ms: np.ndarray
    venue_code: np.ndarray
    symbol_code: np.ndarray
    venues: tuple[str, ...]
    symbols: tuple[str, ...]
    bid_px: np.ndarray
    bid_qty: np.ndarray
    ask_px: np.ndarray
    ask_qty: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_ms)

    def book(self, i: int) -> Book:
        """Row i as a domain Book (padding dropped)."""
        return Book(self.venues[self.venue_code[i]], self.symbols[self.symbol_code[i]], int(self.ts_ms[i]),
                    _levels(self.bid_px[i], self.bid_qty[i]), _levels(self.ask_px[i], self.ask_qty[i]))

    def books(self) -> Iterator[Book]:
        for i in range(len(self)):
            yield self.book(i)


def venue_name(venue: object) -> str:
    """A venue as its plain string ("upbit"), whether given as a Venue enum or a string."""
    return venue.value if isinstance(venue, Enum) else str(venue)


def _levels(px: np.ndarray, qty: np.ndarray) -> tuple[tuple[float, float], ...]:
    keep = ~np.isnan(px)
    return tuple(zip(px[keep].tolist(), qty[keep].tolist()))


def _metadata(source: str, synthetic: bool, kind: str, symbols=None) -> dict[bytes, bytes]:
    if not isinstance(synthetic, bool) or not source:
        raise ValueError("metadata needs synthetic: bool and a non-empty source")
    meta = {"format_version": FORMAT_VERSION, "kind": kind, "synthetic": synthetic, "source": source}
    if symbols is not None:
        meta["symbols"] = [str(s) for s in symbols]
    return {META_KEY: json.dumps(meta).encode()}


def _list_array(rows: list[tuple[float, ...]]) -> pa.Array:
    offsets = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    flat = np.fromiter((v for r in rows for v in r), dtype=np.float64, count=int(offsets[-1]))
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))


def _padded_list_array(px: np.ndarray, qty: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """(n, L) NaN-padded arrays -> two list arrays holding only the real levels of each row."""
    keep = ~np.isnan(px)
    counts = keep.sum(axis=1)
    offsets = np.zeros(len(px) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    off = pa.array(offsets)
    return (pa.ListArray.from_arrays(off, pa.array(px[keep], type=pa.float64())),
            pa.ListArray.from_arrays(off, pa.array(qty[keep], type=pa.float64())))


class BookWriter:
    """Appends books to a Parquet file in row groups; the file appears under its name only on close.

    Rows of each group are sorted by ts_ms (stable); a group older than what was already written
    is refused, so the file stays sorted. Usable as a context manager (the recorder does).
    `symbols`, when given, ranks the coins (a backtest's universe.top_n takes the first N).
    """

    def __init__(self, path: str | Path, *, source: str, synthetic: bool, rows_per_group: int = 100_000,
                 kind: str = "books", symbols=None) -> None:
        if rows_per_group <= 0:
            raise ValueError(f"rows_per_group {rows_per_group} must be positive")
        self.path = Path(path)
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._schema = BOOK_SCHEMA.with_metadata(_metadata(source, synthetic, kind, symbols))
        self._writer = pq.ParquetWriter(self._partial, self._schema, compression="zstd")
        self._rows_per_group = rows_per_group
        self._pending: list[Book] = []
        self._last_ts = -(2 ** 63)
        self.rows_written = 0

    def append(self, book: Book) -> None:
        self._pending.append(book)
        if len(self._pending) >= self._rows_per_group:
            self.flush()

    def extend(self, books: Iterable[Book]) -> None:
        for book in books:
            self.append(book)

    def append_columns(self, cols: BookColumns) -> None:
        """Write a columnar batch directly (fast path for generators); it must already be sorted."""
        self.flush()
        for start in range(0, len(cols), self._rows_per_group):
            sl = slice(start, start + self._rows_per_group)
            bid_px, bid_qty = _padded_list_array(cols.bid_px[sl], cols.bid_qty[sl])
            ask_px, ask_qty = _padded_list_array(cols.ask_px[sl], cols.ask_qty[sl])
            venue = pa.DictionaryArray.from_arrays(pa.array(cols.venue_code[sl], pa.int32()), list(cols.venues))
            symbol = pa.DictionaryArray.from_arrays(pa.array(cols.symbol_code[sl], pa.int32()), list(cols.symbols))
            self._write(np.asarray(cols.ts_ms[sl], dtype=np.int64), venue, symbol, bid_px, bid_qty, ask_px, ask_qty)

    def flush(self) -> None:
        if not self._pending:
            return
        books = sorted(self._pending, key=lambda b: b.ts_ms)  # stable
        self._pending = []
        ts = np.fromiter((b.ts_ms for b in books), dtype=np.int64, count=len(books))
        venue = pa.array([venue_name(b.venue) for b in books]).dictionary_encode()
        symbol = pa.array([b.symbol for b in books]).dictionary_encode()
        cols = [_list_array([tuple(p for p, _ in b.bids) for b in books]),
                _list_array([tuple(q for _, q in b.bids) for b in books]),
                _list_array([tuple(p for p, _ in b.asks) for b in books]),
                _list_array([tuple(q for _, q in b.asks) for b in books])]
        self._write(ts, venue, symbol, *cols)

    def _write(self, ts: np.ndarray, venue: pa.Array, symbol: pa.Array, *levels: pa.Array) -> None:
        if len(ts) == 0:
            return
        if ts[0] < self._last_ts or np.any(np.diff(ts) < 0):
            raise ValueError(f"{self.path}: books at ts_ms {int(ts.min())} arrive after {self._last_ts} "
                             "was written; feed books in time order")
        venue = venue.cast(BOOK_SCHEMA.field("venue").type)
        symbol = symbol.cast(BOOK_SCHEMA.field("symbol").type)
        table = pa.Table.from_arrays([pa.array(ts), venue, symbol, *levels], schema=self._schema)
        self._writer.write_table(table, row_group_size=len(ts))
        self._last_ts = int(ts[-1])
        self.rows_written += len(ts)

    def close(self) -> None:
        self.flush()
        self._writer.close()
        os.replace(self._partial, self.path)

    def abort(self) -> None:
        """Drop the partial file (used when the producer failed: never leave a half file)."""
        self._writer.close()
        self._partial.unlink(missing_ok=True)

    def __enter__(self) -> "BookWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_books(path: str | Path, books: Iterable[Book], *, source: str, synthetic: bool,
                rows_per_group: int = 100_000) -> int:
    """Stream books to a Parquet file with bounded memory; returns the number of rows written."""
    with BookWriter(path, source=source, synthetic=synthetic, rows_per_group=rows_per_group) as writer:
        writer.extend(books)
        writer.flush()
        return writer.rows_written


def open_checked(path: str | Path, kind: str) -> tuple[pq.ParquetFile, FileInfo]:
    """Open a Parquet file of ours and check its metadata; DataError naming the file otherwise."""
    path = Path(path)
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(path, None, f"not a readable Parquet file ({exc})") from exc
    raw = (pf.schema_arrow.metadata or {}).get(META_KEY)
    if raw is None:
        raise DataError(path, None, f"no '{META_KEY.decode()}' metadata: not an arbitrage-lite file")
    try:
        meta = json.loads(raw)
        ranked = meta.get("symbols")
        info = FileInfo(meta["kind"], int(meta["format_version"]), bool(meta["synthetic"]), str(meta["source"]),
                        pf.metadata.num_rows, pf.num_row_groups,
                        None if ranked is None else tuple(str(x) for x in ranked))
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(path, "metadata", f"bad arbitrage_lite metadata {raw[:200]!r}: {exc}") from exc
    if info.kind != kind or info.format_version != FORMAT_VERSION:
        raise DataError(path, "metadata", f"kind {info.kind!r} version {info.format_version}: expected "
                        f"{kind!r} version {FORMAT_VERSION}")
    return pf, info


def book_coins(path: str | Path) -> tuple[str, ...]:
    """The coins a books file holds (not the KRW-USDT book), ranked: the writer's ranking when it
    stored one, else by number of book updates (most first; ties by name). Reads only `symbol`."""
    path = Path(path)
    pf, info = open_checked(path, "books")
    try:
        counts = pf.read(columns=["symbol"]).column("symbol").value_counts().to_pylist()
    except (OSError, pa.ArrowException) as exc:
        raise DataError(path, "symbol", f"unreadable ({exc})") from exc
    held = {str(c["values"]): c["counts"] for c in counts}
    if info.symbols is not None:
        return tuple(s for s in info.symbols if s in held and s != FX_SYMBOL)
    return tuple(sorted((s for s in held if s != FX_SYMBOL), key=lambda s: (-held[s], s)))


def file_info(path: str | Path) -> FileInfo:
    """The metadata of a books or candles file (kind, synthetic flag, source, rows)."""
    path = Path(path)
    try:
        pf = pq.ParquetFile(path)
        kind = json.loads((pf.schema_arrow.metadata or {}).get(META_KEY, b"{}")).get("kind", "books")
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DataError(path, None, f"not a readable arbitrage-lite Parquet file ({exc})") from exc
    return open_checked(path, kind)[1]


def _padded(arr: pa.ListArray, path: Path, column: str, group: int) -> np.ndarray:
    """list<float64> -> (n, L) float64 padded with NaN."""
    if arr.null_count:
        raise DataError(path, f"row group {group}", f"column {column} has null rows")
    offsets = arr.offsets.to_numpy()
    offsets = offsets - offsets[0]
    values = arr.flatten().to_numpy(zero_copy_only=False)
    lengths = np.diff(offsets)
    n, width = len(arr), int(lengths.max()) if len(arr) else 0
    if n and np.all(lengths == width):
        return values.reshape(n, width).astype(np.float64, copy=False)
    out = np.full((n, width), np.nan)
    rows = np.repeat(np.arange(n), lengths)
    out[rows, np.arange(len(values)) - offsets[rows]] = values
    return out


def _zero_nan(qty: np.ndarray) -> np.ndarray:
    """Padding (and any missing quantity) as 0; a full-width group has none, and is not copied."""
    missing = np.isnan(qty)
    return np.where(missing, 0.0, qty) if missing.any() else qty


def _group_columns(pf: pq.ParquetFile, path: Path, group: int, first_row: int) -> BookColumns:
    try:
        table = pf.read_row_group(group)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(path, f"row group {group}", f"unreadable ({exc})") from exc
    missing = [c for c in BOOK_SCHEMA.names if c not in table.column_names]
    if missing:
        raise DataError(path, f"row group {group}", f"missing columns {missing}")
    venue = table.column("venue").combine_chunks()
    symbol = table.column("symbol").combine_chunks()
    if not pa.types.is_dictionary(venue.type):
        venue, symbol = venue.dictionary_encode(), symbol.dictionary_encode()
    px = {c: _padded(table.column(c).combine_chunks(), path, c, group) for c in LEVEL_COLUMNS}
    for side in ("bid", "ask"):
        if px[f"{side}_px"].shape != px[f"{side}_qty"].shape:
            raise DataError(path, f"row group {group}", f"{side}_px and {side}_qty differ in length")
    qty_pad = {c: _zero_nan(px[c]) for c in ("bid_qty", "ask_qty")}
    cols = BookColumns(table.column("ts_ms").to_numpy(), venue.indices.to_numpy(), symbol.indices.to_numpy(),
                       tuple(venue.dictionary.to_pylist()), tuple(symbol.dictionary.to_pylist()),
                       px["bid_px"], qty_pad["bid_qty"], px["ask_px"], qty_pad["ask_qty"])
    _check(cols, path, first_row)
    return cols


def _check(cols: BookColumns, path: Path, first_row: int) -> None:
    """Vectorised sanity checks: time order and uncrossed best prices."""
    bad = np.flatnonzero(np.diff(cols.ts_ms) < 0)
    if bad.size:
        raise DataError(path, f"row {first_row + bad[0] + 1}", "ts_ms goes backwards (file not sorted)")
    if cols.bid_px.shape[1] and cols.ask_px.shape[1]:
        crossed = np.flatnonzero(cols.bid_px[:, 0] >= cols.ask_px[:, 0])
        if crossed.size:
            i = crossed[0]
            raise DataError(path, f"row {first_row + i}", f"crossed book: bid {cols.bid_px[i, 0]} >= ask "
                            f"{cols.ask_px[i, 0]}")


def read_book_columns(path: str | Path) -> Iterator[BookColumns]:
    """Stream a books file as numpy batches, one per row group."""
    path = Path(path)
    pf, info = open_checked(path, "books")
    first_row = 0
    for group in range(info.row_groups):
        cols = _group_columns(pf, path, group, first_row)
        first_row += len(cols)
        yield cols


def read_books(path: str | Path) -> Iterator[Book]:
    """Stream a books file as domain Books, one row group in memory at a time."""
    for cols in read_book_columns(path):
        yield from cols.books()
