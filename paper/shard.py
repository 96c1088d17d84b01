"""A strategy shard: the domain SymbolStrategy for a few symbols, deciding once per coalesced batch.

One process per symbol costs about a Ray worker's memory each; a shard lets one actor host several
symbols (the shard size is configurable, 1 gives one actor per symbol).
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

    def __init__(self, symbols: list[str], params: StrategyParams, market: Market, fx: FxParams):
        self.bn_venue = Venue.BINANCE_USDM.value if params.hedge == "perp" else Venue.BINANCE.value
        self.strategies = {s: SymbolStrategy(s, params, round_trip_fees(market, params.hedge, s)) for s in symbols}
        self.books: dict[tuple[str, str], Book] = {}
        self.fixed_fx = fx_fixed(fx.fixed_usdt_krw) if fx.source == "fixed" else None
        self.now = 0

    def on_books(self, books: list[Book]) -> list[OrderIntent]:
        """Take the batch's books, then let every touched symbol decide at the batch's latest instant."""
        touched: set[str] = set()
        for book in books:
            key = (book.venue, book.symbol)
            held = self.books.get(key)
            if held is not None and held.ts_ms > book.ts_ms:
                continue
            self.books[key] = book
            self.now = max(self.now, book.ts_ms)
            if book.symbol == FX_SYMBOL and self.fixed_fx is None:
                touched.update(self.strategies)
            elif book.symbol in self.strategies:
                touched.add(book.symbol)
        try:
            fx = self.fixed_fx or fx_from_book(self.books.get((Venue.UPBIT.value, FX_SYMBOL)))
        except NoFxRate:
            return []
        intents = []
        for symbol in sorted(touched):
            upbit = self.books.get((Venue.UPBIT.value, symbol))
            binance = self.books.get((self.bn_venue, symbol))
            if upbit is None or binance is None:
                continue
            intent = self.strategies[symbol].on_books(self.now, upbit, binance, fx)
            if intent is not None:
                intents.append(intent)
        return intents

    def on_news(self, symbol: str, kind: str, ts_ms: int, view: PositionView | None) -> None:
        """What the coordinator decided for one of our symbols."""
        strat = self.strategies[symbol]
        if kind == "opened":
            strat.on_opened(view)
        elif kind == "closed":
            strat.on_closed(ts_ms)
        elif kind == "rejected":
            strat.on_rejected()
        else:
            raise ValueError(f"strategy shard: news kind {kind!r} for {symbol} unknown")
