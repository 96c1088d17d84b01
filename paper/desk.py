"""The coordinator's core in paper mode: the backtest Engine's portfolio and fill model, without its
strategies (they run in the strategy actors), fed by live books and remote intents.

Orders fill as in the backtest: an order decided at t meets the latest book at or before
t + venue latency. Books from two feeds can arrive slightly out of time order; an older book is
kept (when newer than the one held) but never moves the clock back.
"""
from __future__ import annotations

from dataclasses import dataclass

from domain.book import Book
from domain.engine import Engine
from domain.orders import OrderIntent
from domain.portfolio import Outcome
from domain.premium import NoFxRate, mid_premium
from domain.strategy import PositionView
from domain.symbols import FX_SYMBOL
from domain.venues import Venue


@dataclass(frozen=True, slots=True)
class News:
    """What a strategy must hear about its symbol: opened (with the view), closed, or rejected."""

    symbol: str
    kind: str                      # opened | closed | rejected
    ts_ms: int
    view: PositionView | None = None


class PaperDesk(Engine):
    """Engine whose decisions come from outside: `submit` intents, `on_books` feed batches."""

    def __init__(self, *args, clocked: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.news: list[News] = []
        self.late_books = 0
        self.clocked = clocked                   # see paper/lockstep.py

    def on_book(self, book: Book) -> None:
        if book.ts_ms >= self.now:
            super().on_book(book)
            return
        self.late_books += 1          # an older book from the other feed: keep it, do not rewind
        held = self.books.get((book.venue, book.symbol))
        if held is None or held.ts_ms <= book.ts_ms:
            self.books[(book.venue, book.symbol)] = book
        self.trace.books += 1

    def on_books(self, books: list[Book]) -> None:
        """Apply a feed batch in time order, then close the instant (fills due, equity mark).

        Clocked (lockstep): orders due at this instant fill in close_instant, once every feed has
        delivered it; the instant is marked when the next one's first book arrives (Engine.advance_to).
        """
        for book in sorted(books, key=lambda b: b.ts_ms):
            self.on_book(book)
        if not self.clocked:
            self.settle()

    def close_instant(self) -> None:
        """Lockstep: the instant's books are all in; fill the orders due at it against them."""
        self.fill_due()

    def settle(self) -> None:
        self._dirty.clear()           # strategies are remote: nothing to evaluate here
        super().settle()

    def submit(self, intent: OrderIntent) -> None:
        """Approve or reject one strategy intent against the desk's current books."""
        upbit = self.books.get((Venue.UPBIT.value, intent.symbol))
        binance = self.books.get((self.bn_venue, intent.symbol))
        self.trace.intents += 1
        try:
            fx = self.fx()
        except NoFxRate:
            fx = None
        if upbit is None or binance is None or fx is None:
            self.news.append(News(intent.symbol, "rejected", self.now))
            return
        _, orders = self.portfolio.submit(intent, upbit, binance, fx)
        if not orders:
            self.news.append(News(intent.symbol, "rejected", self.now))
            return
        self.trace.markers.append({"symbol": intent.symbol, "ts_ms": intent.ts_ms, "premium": intent.premium,
                                   "kind": intent.purpose.value, "direction": intent.direction.value,
                                   "reason": intent.reason})
        self._send(orders)

    def _handle(self, out: Outcome, symbol: str) -> None:
        if out.opened is not None:
            self.news.append(News(symbol, "opened", self.now, out.opened))
        if out.closed is not None or out.failed:
            self.news.append(News(symbol, "closed", self.now))
        super()._handle(out, symbol)  # the local strategy copies only keep the Engine's bookkeeping

    def take_news(self) -> list[News]:
        news, self.news = self.news, []
        return news

    def wants(self, book: Book) -> bool:
        return book.symbol == FX_SYMBOL or book.symbol in self.strategies

    def status_rows(self) -> list[dict]:
        """One row per symbol for the live table: mid premium, open position and its mark, realised PnL."""
        try:
            rate = self.fx().mid
        except NoFxRate:
            rate = None
        realised: dict[str, float] = {}
        for rt in self.portfolio.round_trips:
            realised[rt.symbol] = realised.get(rt.symbol, 0.0) + rt.pnl_krw
        open_by_symbol = {p.symbol: p for p in self.portfolio.open_positions()}
        rows = []
        for symbol in sorted(self.strategies):
            upbit = self.books.get((Venue.UPBIT.value, symbol))
            binance = self.books.get((self.bn_venue, symbol))
            premium = None
            if rate is not None and upbit is not None and binance is not None:
                premium = round(mid_premium(upbit, binance, self.fx()) * 1e4, 2)
            pos = open_by_symbol.get(symbol)
            unrealised = self.add_position_mark(0.0, pos, rate) if pos is not None and rate is not None else 0.0
            rows.append({"symbol": symbol, "premium_bps": premium,
                         "direction": pos.direction.value if pos is not None else None,
                         "qty": pos.qty if pos is not None else 0.0,
                         "unrealised_krw": round(unrealised), "realised_krw": round(realised.get(symbol, 0.0))})
        return rows
