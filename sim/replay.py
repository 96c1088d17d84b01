"""Feeds recorded books into the board: one step at a time under test control, or paced in real time."""
from __future__ import annotations

import asyncio
from typing import Callable, Iterable, Iterator

from domain.book import Book


class Replayer:
    """Publishes books in order through `publish`; `speed` > 0 paces them by their timestamps."""

    def __init__(self, books: Iterable[Book], publish: Callable[[Book], None]) -> None:
        self._books: Iterator[Book] = iter(books)
        self._pending: Book | None = None
        self._publish = publish
        self.published = 0
        self.last_ts_ms: int | None = None

    def _peek(self) -> Book | None:
        if self._pending is None:
            self._pending = next(self._books, None)
        return self._pending

    def step(self) -> Book | None:
        """Publish the next book; None when the recording is exhausted."""
        book = self._peek()
        if book is None:
            return None
        if self.last_ts_ms is not None and book.ts_ms < self.last_ts_ms:
            raise ValueError(f"replay: book {book.venue} {book.symbol} at {book.ts_ms} is older than "
                             f"the previous one at {self.last_ts_ms}; books must be in time order")
        self._pending = None
        self._publish(book)
        self.published += 1
        self.last_ts_ms = book.ts_ms
        return book

    def advance_to(self, ts_ms: int) -> int:
        """Publish every book stamped at or before `ts_ms`; return how many."""
        count = 0
        while (book := self._peek()) is not None and book.ts_ms <= ts_ms:
            self.step()
            count += 1
        return count

    async def run(self, speed: float) -> None:
        """Publish everything, sleeping (gap between book timestamps) / speed between books."""
        if speed <= 0:
            raise ValueError(f"replay speed {speed} must be > 0")
        loop = asyncio.get_running_loop()
        start_wall = loop.time()
        first = self._peek()
        if first is None:
            return
        start_ts = first.ts_ms
        while (book := self._peek()) is not None:
            due = start_wall + (book.ts_ms - start_ts) / 1000 / speed
            delay = due - loop.time()
            # Behind schedule still yields: a replay that never awaits starves the venue's REST and sockets.
            await asyncio.sleep(max(delay, 0.0))
            self.step()
