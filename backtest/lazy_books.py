"""The engine's latest-book map in the fast replay: a key resolves to its latest row at a cursor.

The replay moves `cursor` (a row of the current chunk) to the instant the engine is working at;
a Book is built only when the engine reads one, and kept while the row it came from is the latest.
"""
from __future__ import annotations

from bisect import bisect_right

from backtest.chunk_index import ChunkIndex, Key
from domain.book import Book


class LazyBooks(dict):
    """Mapping (venue, symbol) -> Book as of `cursor`; books set explicitly (a restore) sit below the chunks."""

    def __init__(self):
        super().__init__()
        self.built = 0              # Books actually made: what the fast path saves shows here
        self.cursor = -1            # rows of the current chunk up to here are in
        self._index: ChunkIndex | None = None
        self._rows: dict[Key, list[int]] = {}
        self._made: dict[Key, tuple[object, int, Book]] = {}

    def show(self, index: ChunkIndex) -> None:
        """Serve books from `index` (its carry holds every earlier book); cursor before its first row."""
        self._index, self._rows, self.cursor = index, {}, -1
        # keep a built Book only while it is still its key's latest (never pin an old chunk)
        self._made = {k: m for k, m in self._made.items()
                      if (c := index.carry.get(k)) is not None and c[0] is m[0] and c[1] == m[1]}

    def get(self, key, default=None):
        ix = self._index
        if ix is not None:
            rows = self._rows.get(key)
            if rows is None:
                found = ix.key_rows.get(key)
                rows = self._rows[key] = found.tolist() if found is not None else []
            j = bisect_right(rows, self.cursor) - 1
            if j >= 0:
                return self._book(key, ix.cols, rows[j])
            carried = ix.carry.get(key)
            if carried is not None:
                return self._book(key, *carried)
        return dict.get(self, key, default)

    def __getitem__(self, key) -> Book:
        book = self.get(key)
        if book is None:
            raise KeyError(key)
        return book

    def __contains__(self, key) -> bool:
        return self.get(key) is not None

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def keys(self):
        ix = self._index
        seen = dict.fromkeys(dict.keys(self))
        if ix is not None:
            seen.update(dict.fromkeys(ix.carry))
            seen.update((k, None) for k, rows in ix.key_rows.items() if rows[0] <= self.cursor)
        return list(seen)

    def clear(self) -> None:
        dict.clear(self)
        self._index, self._rows, self._made = None, {}, {}

    def _book(self, key: Key, cols, row: int) -> Book:
        made = self._made.get(key)
        if made is not None and made[0] is cols and made[1] == row:
            return made[2]
        book = cols.book(row)
        self._made[key] = (cols, row, book)
        self.built += 1
        return book
