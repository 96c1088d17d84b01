"""One chunk of book rows indexed for the fast replay: instants, rows per book, latest row at any point.

An instant is a run of rows with the same ts_ms (the engine decides once per instant, after all of
its rows are in). Lookups reach back past the chunk: the last row of every book from earlier chunks
is appended to the 1-D arrays as a carry row, and index -1 is a sentinel meaning "no book yet".
"""
from __future__ import annotations

import numpy as np

from marketdata.parquet_books import BookColumns

Key = tuple[str, str]   # (venue, symbol), as the engine keys its books
Row = tuple[BookColumns, int]


def whole_instants(chunks):
    """Re-cut chunks so no instant spans two of them (a Parquet row group may split one)."""
    held = None
    for cols in chunks:
        if cols is None or not len(cols):
            continue
        if held is not None and cols.ts_ms[0] == held.ts_ms[-1]:
            held = concat(held, cols)   # rare: costs a copy of the two chunks
            continue
        if held is not None:
            yield held
        held = cols
    if held is not None:
        yield held


def concat(a: BookColumns, b: BookColumns) -> BookColumns:
    """Two chunks as one, on shared venue/symbol tables and a common level width."""
    venues = tuple(dict.fromkeys(a.venues + b.venues))
    symbols = tuple(dict.fromkeys(a.symbols + b.symbols))

    def codes(cols, table, names):
        remap = np.array([table.index(x) for x in names], dtype=np.int32)
        return remap[cols]

    width = max(a.bid_px.shape[1], b.bid_px.shape[1])

    def pad(arr, fill):
        if arr.shape[1] == width:
            return arr
        out = np.full((arr.shape[0], width), fill)
        out[:, :arr.shape[1]] = arr
        return out

    return BookColumns(np.concatenate([a.ts_ms, b.ts_ms]),
                       np.concatenate([codes(a.venue_code, venues, a.venues), codes(b.venue_code, venues, b.venues)]),
                       np.concatenate([codes(a.symbol_code, symbols, a.symbols),
                                       codes(b.symbol_code, symbols, b.symbols)]),
                       venues, symbols,
                       *[np.concatenate([pad(getattr(a, f), fill), pad(getattr(b, f), fill)])
                         for f, fill in (("bid_px", np.nan), ("bid_qty", 0.0), ("ask_px", np.nan), ("ask_qty", 0.0))])


def select(cols: BookColumns, keep: np.ndarray) -> BookColumns:
    """The rows where `keep` holds (a copy)."""
    return BookColumns(cols.ts_ms[keep], cols.venue_code[keep], cols.symbol_code[keep], cols.venues, cols.symbols,
                       cols.bid_px[keep], cols.bid_qty[keep], cols.ask_px[keep], cols.ask_qty[keep])


class ChunkIndex:
    """Instants, the rows of every book and every symbol, and the carry of earlier chunks.

    `carry` maps each book seen before to its last (chunk, row); it is extended by `carry_after`.
    """

    def __init__(self, cols: BookColumns, carry: dict[Key, Row]):
        self.cols = cols
        ts = np.asarray(cols.ts_ms, dtype=np.int64)
        n = self.n = len(ts)
        starts = np.flatnonzero(np.concatenate([[True], ts[1:] != ts[:-1]]))
        self.inst_start = starts
        self.inst_end = np.concatenate([starts[1:] - 1, [n - 1]])
        self.inst_ts = ts[starts]
        mark = np.zeros(n, dtype=np.int64)
        mark[starts] = 1
        self.inst_of_row = np.cumsum(mark) - 1
        nsym = len(cols.symbols)
        key_code = cols.venue_code.astype(np.int64) * nsym + cols.symbol_code
        self.key_rows = _groups(key_code, [(v, s) for v in cols.venues for s in cols.symbols])
        self.symbol_rows = _groups(cols.symbol_code.astype(np.int64), list(cols.symbols))
        # 1-D columns with one carry row per earlier book, then the "no book" sentinel at -1
        self.carry = carry
        self.carry_slot = {key: n + i for i, key in enumerate(carry)}
        rows = self._carry_rows = list(carry.values())
        self.ts = np.concatenate([ts, [c.ts_ms[r] for c, r in rows], [np.iinfo(np.int64).min // 2]])
        self.bid = np.concatenate([cols.bid_px[:, 0], [c.bid_px[r, 0] for c, r in rows], [np.nan]])
        self.ask = np.concatenate([cols.ask_px[:, 0], [c.ask_px[r, 0] for c, r in rows], [np.nan]])
        self.exists = np.ones(len(self.ts), dtype=bool)
        self.exists[-1] = False
        self._rate = None

    def rate(self, fx_key: Key) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """USDT/KRW (bid, ask, known) at the end of every instant, from the `fx_key` book.

        Worked out once per chunk, not once per coin: an instant whose KRW-USDT book left the
        quote as it was hands every coin the same rate for free."""
        if self._rate is None:
            at = self.latest(fx_key, self.inst_end)
            bid, ask = self.bid[at], self.ask[at]
            self._rate = (bid, ask, self.exists[at] & ~np.isnan(bid) & ~np.isnan(ask))
        return self._rate

    def touches(self, symbol: str, also: str | None = None) -> np.ndarray:
        """Ascending ids of the instants holding a row of `symbol` (or of `also`, e.g. KRW-USDT)."""
        mark = np.zeros(len(self.inst_ts), dtype=bool)
        for name in (symbol, also):
            rows = self.symbol_rows.get(name) if name is not None else None
            if rows is not None:
                mark[self.inst_of_row[rows]] = True
        return np.flatnonzero(mark)

    def latest(self, key: Key, at_rows: np.ndarray) -> np.ndarray:
        """Index (into the 1-D columns) of `key`'s latest row at or before each of `at_rows`."""
        rows = self.key_rows.get(key)
        fallback = self.carry_slot.get(key, -1)
        if rows is None:
            return np.full(len(at_rows), fallback, dtype=np.int64)
        pos = np.searchsorted(rows, at_rows, side="right") - 1
        return np.where(pos >= 0, rows[np.maximum(pos, 0)], fallback)

    def row(self, index: int) -> Row:
        """(chunk, row) behind an index of the 1-D columns."""
        if index < self.n:
            return self.cols, index
        return self._carry_rows[index - self.n]

    def levels(self, idx: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
        """(prices, quantities) of `side` ("bid"/"ask") for each index, NaN/0-padded to one width."""
        px_name, qty_name = f"{side}_px", f"{side}_qty"
        own = idx < self.n
        carried = np.flatnonzero(~own)
        width = getattr(self.cols, px_name).shape[1]
        sources = [self.row(int(i)) for i in idx[carried]]
        if sources:
            width = max(width, *(getattr(c, px_name).shape[1] for c, _ in sources))
        px = np.full((len(idx), width), np.nan)
        qty = np.zeros((len(idx), width))
        mine = np.flatnonzero(own)
        w = getattr(self.cols, px_name).shape[1]
        px[mine, :w] = getattr(self.cols, px_name)[idx[mine]]
        qty[mine, :w] = getattr(self.cols, qty_name)[idx[mine]]
        for out_row, (c, r) in zip(carried, sources):
            w = getattr(c, px_name).shape[1]
            px[out_row, :w] = getattr(c, px_name)[r]
            qty[out_row, :w] = getattr(c, qty_name)[r]
        return px, qty

    def carry_after(self) -> dict[Key, Row]:
        """The carry for the next chunk: each book's last row, old rows copied out of their chunks."""
        out: dict[Key, Row] = {}
        for key, (c, r) in self.carry.items():
            if key not in self.key_rows:   # quiet in this chunk: keep its row, not the chunk it sits in
                out[key] = (c, r) if len(c) == 1 else (one_row(c, r), 0)
            else:
                out[key] = (c, r)          # (its place in the order; replaced just below)
        for key, rows in self.key_rows.items():
            out[key] = (self.cols, int(rows[-1]))
        return out


def one_row(cols: BookColumns, r: int) -> BookColumns:
    """Row r as a chunk of its own, so an old chunk is not kept alive by one book that went quiet."""
    sl = slice(r, r + 1)
    return BookColumns(cols.ts_ms[sl].copy(), cols.venue_code[sl].copy(), cols.symbol_code[sl].copy(), cols.venues,
                       cols.symbols, cols.bid_px[sl].copy(), cols.bid_qty[sl].copy(), cols.ask_px[sl].copy(),
                       cols.ask_qty[sl].copy())


def _groups(codes: np.ndarray, names: list) -> dict:
    """name -> ascending row indices of the rows carrying that code (codes index `names`)."""
    small = codes.astype(np.uint16) if len(names) <= np.iinfo(np.uint16).max else codes
    order = np.argsort(small, kind="stable")   # a radix sort on 16-bit codes
    counts = np.bincount(codes, minlength=len(names))
    ends = np.cumsum(counts)
    return {names[i]: order[ends[i] - counts[i]:ends[i]] for i in np.flatnonzero(counts)}
