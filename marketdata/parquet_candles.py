"""The on-disk format for candles: ts_ms (bar OPEN time, UTC ms), venue, symbol, interval_s, OHLCV.

Same metadata key and rules as the book files (kind "candles"), rows sorted by ts_ms, read by row group.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from marketdata.candle import Candle
from marketdata.errors import DataError
from marketdata.parquet_books import _metadata, open_checked, venue_name

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
CANDLE_SCHEMA = pa.schema([
    ("ts_ms", pa.int64()),
    ("venue", pa.dictionary(pa.int32(), pa.string())),
    ("symbol", pa.dictionary(pa.int32(), pa.string())),
    ("interval_s", pa.int32()),
    *[(name, pa.float64()) for name in PRICE_COLUMNS],
])


@dataclass(frozen=True, eq=False)
class CandleColumns:
    """A batch of candles as numpy arrays (one per row group); venue/symbol as the batch's strings."""

    ts_ms: np.ndarray
    venue: np.ndarray
    symbol: np.ndarray
    interval_s: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_ms)


def write_candles(path: str | Path, candles: Iterable[Candle], *, source: str, synthetic: bool,
                  rows_per_group: int = 100_000) -> int:
    """Write candles (sorted by ts_ms, stable) in row groups; the file appears only when complete."""
    path = Path(path)
    rows = sorted(candles, key=lambda c: c.ts_ms)
    partial = path.with_name(path.name + ".partial")
    schema = CANDLE_SCHEMA.with_metadata(_metadata(source, synthetic, "candles"))
    with pq.ParquetWriter(partial, schema, compression="zstd") as writer:
        for start in range(0, len(rows), rows_per_group):
            part = rows[start:start + rows_per_group]
            arrays = [pa.array([c.ts_ms for c in part], pa.int64()),
                      pa.array([venue_name(c.venue) for c in part]).dictionary_encode().cast(schema.field("venue").type),
                      pa.array([c.symbol for c in part]).dictionary_encode().cast(schema.field("symbol").type),
                      pa.array([c.interval_s for c in part], pa.int32()),
                      *[pa.array([getattr(c, name) for c in part], pa.float64()) for name in PRICE_COLUMNS]]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=len(part))
    os.replace(partial, path)
    return len(rows)


def read_candle_columns(path: str | Path) -> Iterator[CandleColumns]:
    """Stream a candles file as numpy batches, one per row group."""
    path = Path(path)
    pf, info = open_checked(path, "candles")
    for group in range(info.row_groups):
        try:
            table = pf.read_row_group(group)
            cols = {name: table.column(name).combine_chunks() for name in CANDLE_SCHEMA.names}
        except (KeyError, OSError, pa.ArrowException) as exc:
            raise DataError(path, f"row group {group}", f"unreadable or missing column ({exc})") from exc
        yield CandleColumns(**{name: (arr.to_numpy(zero_copy_only=False) if name not in ("venue", "symbol")
                                      else np.asarray(arr.to_pylist(), dtype=object))
                               for name, arr in cols.items()})


def read_candles(path: str | Path) -> Iterator[Candle]:
    """Stream a candles file as Candle records."""
    for cols in read_candle_columns(path):
        for i in range(len(cols)):
            yield Candle(cols.venue[i], cols.symbol[i], int(cols.ts_ms[i]), int(cols.interval_s[i]),
                         float(cols.open[i]), float(cols.high[i]), float(cols.low[i]), float(cols.close[i]),
                         float(cols.volume[i]))
