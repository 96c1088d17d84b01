"""A strategy shard: the domain SymbolStrategy for a few symbols, deciding once per coalesced batch.

One process per symbol costs about a Ray worker's memory each; a shard lets one actor host several
symbols (the shard size is configurable, 1 gives one actor per symbol).

Live books: every touched symbol decides as each batch arrives. `clocked` (paper/lockstep.py): the
driver says when an instant is complete (`close_instant`), the backtest engine's rule ("decide once all
updates of an instant are in"), so the Upbit half of an instant is never judged against the Binance
book of the instant before.
"""
from __future__ import annotations

from domain.book import Book
from domain.engine import round_trip_fees
from domain.orders import OrderIntent
from domain.params import FxParams, Market, StrategyParams
from domain.premium import NoFxRate, fx_fixed, fx_from_book
from domain.strategy import PositionView, SymbolStrategy
from domain.symbols import FX_SYMBOL
from domain.venues import Venue


class StrategyShard:
    """Latest books of its symbols (and FX); a batch in, at most one intent per symbol out."""

    def __init__(self, symbols: list[str], params: StrategyParams, market: Market, fx: FxParams,
                 clocked: bool = False):
        self.bn_venue = Venue.BINANCE_USDM.value if params.hedge == "perp" else Venue.BINANCE.value
        self.strategies = {s: SymbolStrategy(s, params, round_trip_fees(market, params.hedge, s)) for s in symbols}
        self.books: dict[tuple[str, str], Book] = {}
        self.fixed_fx = fx_fixed(fx.fixed_usdt_krw) if fx.source == "fixed" else None
        self.now = 0
        self.clocked = clocked
        self.pending: set[str] = set()          # touched symbols not yet decided

    def on_books(self, books: list[Book]) -> list[OrderIntent]:
        """Take the batch's books, then let every touched symbol decide (clocked: wait for close_instant)."""
        for book in books:
            key = (book.venue, book.symbol)
            held = self.books.get(key)
            if held is not None and held.ts_ms > book.ts_ms:
                continue
            self.books[key] = book
            self.now = max(self.now, book.ts_ms)
            if book.symbol == FX_SYMBOL and self.fixed_fx is None:
                touched = self.strategies
            elif book.symbol in self.strategies:
                touched = (book.symbol,)
            else:
                continue
            self.pending.update(touched)
        return [] if self.clocked else self.close_instant(self.now)

    def close_instant(self, ts_ms: int) -> list[OrderIntent]:
        """Every symbol touched since the last call decides at `ts_ms`; at most one intent each."""
        ready, self.pending = sorted(self.pending), set()
        return [i for i in (self._decide(s, ts_ms) for s in ready) if i is not None]

    def _decide(self, symbol: str, ts_ms: int) -> OrderIntent | None:
        try:
            fx = self.fixed_fx or fx_from_book(self.books.get((Venue.UPBIT.value, FX_SYMBOL)))
        except NoFxRate:
            return None
        upbit = self.books.get((Venue.UPBIT.value, symbol))
        binance = self.books.get((self.bn_venue, symbol))
        if upbit is None or binance is None:
            return None
        return self.strategies[symbol].on_books(ts_ms, upbit, binance, fx)

    def on_news(self, symbol: str, kind: str, ts_ms: int, view: PositionView | None) -> OrderIntent | None:
        """What the coordinator decided for one of our symbols; may return an exit intent.

        Real venues: the book that settled an entry's fills reaches this shard before the news does,
        so it was judged without the position; the engine judges it with the position (fills settle
        first), so an opened position is judged again on the books already held, if they are that new.
        With a shared clock the desk fills an instant before the shard decides it (lockstep) or the
        next instant catches up, so no second judgement.
        """
        strat = self.strategies[symbol]
        if kind == "opened":
            strat.on_opened(view)
            held = [b.ts_ms for v in (Venue.UPBIT.value, self.bn_venue) if (b := self.books.get((v, symbol)))]
            if not self.clocked and held and max(held) >= ts_ms:
                return self._decide(symbol, max(held))
        elif kind == "closed":
            strat.on_closed(ts_ms)
        elif kind == "rejected":
            strat.on_rejected(ts_ms)
        else:
            raise ValueError(f"strategy shard: news kind {kind!r} for {symbol} unknown")
        return None
