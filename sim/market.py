"""The books the simulator is publishing now, with Binance update ids and change listeners."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from domain.book import Book, Levels

VENUES = ("upbit", "binance", "binance_usdm")
FIRST_UPDATE_ID = 1_000_000  # Binance ids start high, like the real venue's


@dataclass(frozen=True, slots=True)
class DepthDiff:
    """One Binance depthUpdate worth of changes: ids U..u, previous u (pu), changed levels."""

    venue: str
    symbol: str
    ts_ms: int
    first_id: int      # U
    last_id: int       # u
    prev_last_id: int  # pu: what the previous event's u was (or should have been after a gap)
    bids: Levels       # (price, qty); qty 0 removes the level
    asks: Levels


def level_changes(old: Levels, new: Levels) -> Levels:
    """Levels that differ between two sides of a book; removed levels get quantity 0."""
    before = dict(old)
    after = dict(new)
    changed = [(px, qty) for px, qty in new if before.get(px) != qty]
    changed += [(px, 0.0) for px in before if px not in after]
    return tuple(changed)


Listener = Callable[[Book, "DepthDiff | None"], None]


class MarketBoard:
    """Holds the latest book per (venue, coin) and tells listeners about every publish."""

    def __init__(self, markets: dict[str, tuple[str, ...]]) -> None:
        unknown = set(markets) - set(VENUES)
        if unknown:
            raise ValueError(f"sim markets: unknown venue(s) {sorted(unknown)}; expected {VENUES}")
        self.markets = {v: tuple(markets.get(v, ())) for v in VENUES}
        self._books: dict[tuple[str, str], Book] = {}
        self._update_id: dict[tuple[str, str], int] = {}
        self._listeners: list[Listener] = []
        self.gaps_pending: dict[str, int] = {}  # venue -> update ids to skip on the next diffs

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unlisten(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def book(self, venue: str, symbol: str) -> Book | None:
        return self._books.get((venue, symbol))

    def last_update_id(self, venue: str, symbol: str) -> int:
        return self._update_id.get((venue, symbol), FIRST_UPDATE_ID)

    def has_market(self, venue: str, symbol: str) -> bool:
        return symbol in self.markets.get(venue, ())

    def publish(self, book: Book) -> DepthDiff | None:
        """Make `book` current and notify listeners; Binance venues also get a sequenced diff."""
        if not self.has_market(book.venue, book.symbol):
            raise ValueError(f"sim publish: {book.venue} {book.symbol} at {book.ts_ms} is not a listed market")
        key = (book.venue, book.symbol)
        old = self._books.get(key)
        self._books[key] = book
        diff = None
        if book.venue != "upbit":
            diff = self._sequence(book, old)
        for listener in list(self._listeners):
            listener(book, diff)
        return diff

    def _sequence(self, book: Book, old: Book | None) -> DepthDiff:
        key = (book.venue, book.symbol)
        prev = self._update_id.get(key, FIRST_UPDATE_ID)
        skipped = self.gaps_pending.pop(book.venue, 0)
        bids = level_changes(old.bids if old else (), book.bids)
        asks = level_changes(old.asks if old else (), book.asks)
        first = prev + 1 + skipped
        last = first + max(len(bids) + len(asks), 1) - 1
        self._update_id[key] = last
        return DepthDiff(book.venue, book.symbol, book.ts_ms, first, last, prev + skipped, bids, asks)
