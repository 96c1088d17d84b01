"""The engine core: books in, strategies decide, the portfolio trades, the fill model fills.

One event at a time in time order. An order decided at t fills against the book as of
t + venue latency (the latest update at or before that instant), so a premium that vanished in
between is not captured. The backtest drives it in-process; paper mode drives the same pieces
from the actors.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from domain.book import Book
from domain.fills import simulate_fill
from domain.ledger import Ledger
from domain.orders import Fill, Order, Purpose, RoundTrip
from domain.params import FxParams, Market, RiskLimits, StrategyParams
from domain.portfolio import Outcome, Portfolio
from domain.premium import FxQuote, NoFxRate, fx_fixed, fx_from_book
from domain.series import ThinnedSeries
from domain.strategy import SymbolStrategy
from domain.symbols import FX_SYMBOL
from domain.venues import Venue

FUNDING_PERIOD_MS = 8 * 3_600_000


def round_trip_fees(market: Market, hedge: str, symbol: str) -> float:
    """The four taker fees of a round trip (entry and exit, both legs) as a fraction."""
    bn = Venue.BINANCE_USDM if hedge == "perp" else Venue.BINANCE
    return 2 * (market.rules_for(Venue.UPBIT, symbol).taker_fee + market.rules_for(bn, symbol).taker_fee)


@dataclass(slots=True)
class Trace:
    """What a run produced for the report and the KPIs (plain values)."""

    equity: list[tuple[int, float]] = field(default_factory=list)
    premium: dict[str, ThinnedSeries] = field(default_factory=dict)   # bounded, spikes kept
    markers: list[dict] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    books: int = 0
    evaluations: int = 0
    intents: int = 0


class Engine:
    """Single-process engine over the shared domain rules (backtest, and paper's fill model)."""

    def __init__(self, symbols: list[str], strategy: StrategyParams, limits: RiskLimits, market: Market,
                 fx: FxParams, balances: dict, equity_interval_ms: int = 60_000, keep_fills: bool = True,
                 books: dict | None = None):
        self.market, self.fx_params, self.hedge = market, fx, strategy.hedge
        self.bn_venue = Venue.BINANCE_USDM.value if strategy.hedge == "perp" else Venue.BINANCE.value
        self.ledger = Ledger(balances)
        self.portfolio = Portfolio(market, limits, self.ledger, strategy.hedge, fx.usd_krw_reference)
        self.strategies = {s: SymbolStrategy(s, strategy, round_trip_fees(market, strategy.hedge, s))
                           for s in symbols}
        self.books: dict[tuple[str, str], Book] = {} if books is None else books  # a lazy map in the fast path
        self.pending: list[tuple[int, int, Order]] = []
        self.now = 0
        self.trace = Trace()
        self.keep_fills = keep_fills
        self._seq = 0
        self._fill_seq = 0
        self._equity_every = equity_interval_ms
        self._next_equity = 0
        self._next_funding = 0
        self._fixed_fx = fx_fixed(fx.fixed_usdt_krw) if fx.source == "fixed" else None
        self._dirty: set[str] = set()
        self._initial_equity: float | None = None

    # -- input ---------------------------------------------------------------------------------
    def on_book(self, book: Book) -> None:
        """Apply one book update. Strategies decide once all updates of an instant are in."""
        self.advance_to(book.ts_ms, book.venue, book.symbol)
        self.books[(book.venue, book.symbol)] = book
        self.trace.books += 1
        if book.symbol == FX_SYMBOL:
            if self._fixed_fx is None:
                self._dirty.update(self.strategies)
        elif book.symbol in self.strategies:
            self._dirty.add(book.symbol)

    def advance_to(self, ts: int, venue: str = "", symbol: str = "") -> None:
        """Move the clock to `ts`: close the instant before it and fill what falls due in between."""
        if ts < self.now:
            raise ValueError(f"book {venue} {symbol} at {ts} is older than the clock {self.now}")
        if ts > self.now:
            self.settle()
            self._fill_due(ts, inclusive=False)
        self.now = ts

    def next_work_ms(self) -> int | float:
        """Earliest instant at which closing an instant does more than evaluate dirty symbols:
        an order falls due, equity is marked, or funding is paid (for the backtest's fast path)."""
        due = min(self._next_equity, self.pending[0][0]) if self.pending else self._next_equity
        return min(due, self._next_funding) if self.hedge == "perp" else due

    def mark_dirty(self, symbol: str) -> None:
        """Have `symbol` evaluated when the current instant closes (the fast path's exact events)."""
        self._dirty.add(symbol)

    def fill_due(self) -> None:
        """Fill the orders due at or before now: the first step of closing an instant, before any
        symbol decides (the backtest's fast path runs it apart to see which strategies it changed)."""
        self._fill_due(self.now, inclusive=True)

    @property
    def fill_count(self) -> int:
        """Fills simulated so far (the fast path compares it to notice that strategies may have changed)."""
        return self._fill_seq

    def settle(self) -> None:
        """Close the current instant: fill orders due now, then let the touched symbols decide."""
        self.fill_due()
        if self._dirty:
            for symbol in sorted(self._dirty):
                self.evaluate(symbol)
            self._dirty.clear()
        if self.now >= self._next_equity:
            self._mark(self.now)
        if self.hedge == "perp" and self.now >= self._next_funding:
            self._funding(self.now)

    def fx(self) -> FxQuote:
        return self._fixed_fx or fx_from_book(self.books.get((Venue.UPBIT.value, FX_SYMBOL)))

    def evaluate(self, symbol: str) -> None:
        upbit = self.books.get((Venue.UPBIT.value, symbol))
        binance = self.books.get((self.bn_venue, symbol))
        if upbit is None or binance is None:
            return
        try:
            fx = self.fx()
        except NoFxRate:
            return
        strat = self.strategies[symbol]
        sample_before = strat.next_sample_ms
        self.trace.evaluations += 1
        intent = strat.on_books(self.now, upbit, binance, fx)
        if strat.next_sample_ms != sample_before and strat.last_premium is not None:
            series = self.trace.premium.get(symbol)
            if series is None:
                series = self.trace.premium[symbol] = ThinnedSeries()
            series.append((self.now, strat.last_premium))
        if intent is None:
            return
        self.trace.intents += 1
        decision, orders = self.portfolio.submit(intent, upbit, binance, fx)
        if not orders:
            strat.on_rejected(self.now)
            return
        self.trace.markers.append({"symbol": symbol, "ts_ms": self.now, "premium": intent.premium,
                                   "kind": intent.purpose.value, "direction": intent.direction.value,
                                   "reason": intent.reason})
        self._send(orders)

    # -- fills ---------------------------------------------------------------------------------
    def _send(self, orders) -> None:
        for order in orders:
            self._seq += 1
            heapq.heappush(self.pending, (order.due_ms, self._seq, order))
            if self.keep_fills:
                self.trace.orders.append(order)

    def _fill_due(self, ts: int, inclusive: bool) -> None:
        while self.pending and (self.pending[0][0] < ts or (inclusive and self.pending[0][0] == ts)):
            _, _, order = heapq.heappop(self.pending)
            self._execute(order)

    def _execute(self, order: Order) -> None:
        book = self.books[(order.venue, order.symbol)]
        self._fill_seq += 1
        fill = simulate_fill(order, book, self.market.rules_for(Venue(order.venue), order.symbol),
                             f"{order.order_id}-f")
        if self.keep_fills:
            self.trace.fills.append(fill)
        upbit = self.books[(Venue.UPBIT.value, order.symbol)]
        binance = self.books[(self.bn_venue, order.symbol)]
        self._handle(self.portfolio.on_fill(fill, self.fx(), upbit, binance), order.symbol)

    def _handle(self, out: Outcome, symbol: str) -> None:
        strat = self.strategies[symbol]
        if out.orders:
            self._send(out.orders)
        if out.opened is not None:
            strat.on_opened(out.opened)
        if out.closed is not None or out.failed:
            strat.on_closed(self.now)
        if out.closed is not None:
            self.trace.markers.append({"symbol": symbol, "ts_ms": out.closed.exit_ts_ms,
                                       "premium": out.closed.exit_premium, "kind": "exit",
                                       "direction": out.closed.direction.value,
                                       "reason": out.closed.exit_reason})
        if out.stuck:
            self.trace.alerts.append(out.stuck)

    def finish(self) -> None:
        """End of data: orders still in flight meet the last books; equity is marked a last time."""
        self.settle()
        while self.pending:
            _, _, order = heapq.heappop(self.pending)
            self.now = max(self.now, order.due_ms)
            self._execute(order)
        self._mark(self.now)

    # -- valuation -----------------------------------------------------------------------------
    def equity_krw(self) -> float:
        """Everything held, valued at mids in KRW (USDT at the FX mid)."""
        try:
            rate = self.fx().mid
        except NoFxRate:
            return float("nan")
        total = 0.0
        for (venue, asset), amount in self.ledger.balances.items():
            if asset == "KRW":
                total += float(amount)
            elif asset == "USDT":
                total += float(amount) * rate
            else:
                book = self.books.get((venue, asset))
                if book is not None:
                    total += float(amount) * book.mid * (1.0 if venue == Venue.UPBIT.value else rate)
        for coin, perp in self.ledger.perps.items():
            book = self.books.get((Venue.BINANCE_USDM.value, coin))
            if book is not None and perp.qty:
                total += float(perp.qty) * (book.mid - float(perp.avg)) * rate
        return total

    def strategy_equity_krw(self) -> float:
        """Starting equity plus realised PnL plus open positions marked to mids.

        Unlike `equity_krw`, it leaves out the revaluation of the idle coin inventory, so the
        curve, drawdown and ROI show what the strategy did, not where the coin's price went.
        """
        try:
            rate = self.fx().mid
        except NoFxRate:
            return float("nan")
        value = sum(rt.pnl_krw for rt in self.portfolio.round_trips)
        for pos in self.portfolio.open_positions():
            value = self.add_position_mark(value, pos, rate)
        return (self._initial_equity or 0.0) + value

    def add_position_mark(self, value: float, pos, rate: float) -> float:
        """`value` plus an open position marked to mids: its cash deltas and the coin it holds (KRW).
        Added term by term into `value`, so every caller sums in the same order."""
        value += float(pos.krw_delta) + float(pos.usdt_delta) * rate
        for venue, held in pos.coin.items():
            book = self.books.get((venue, pos.symbol))
            if book is not None:
                value += float(held) * book.mid * (1.0 if venue == Venue.UPBIT.value else rate)
        return value

    def _mark(self, ts: int) -> None:
        if self._initial_equity is None:
            start = self.equity_krw()
            if start != start:
                return
            self._initial_equity = start
        value = self.strategy_equity_krw()
        if value == value:
            self.trace.equity.append((ts, value))
        self._next_equity = ts - ts % self._equity_every + self._equity_every

    def _funding(self, ts: int) -> None:
        period = ts - ts % FUNDING_PERIOD_MS
        if self._next_funding:
            for coin in list(self.ledger.perps):
                book = self.books.get((Venue.BINANCE_USDM.value, coin))
                if book is not None:
                    self.portfolio.apply_funding(f"funding-{coin}-{period}", coin,
                                                 self.market.funding_rate_8h, book.mid)
        self._next_funding = period + FUNDING_PERIOD_MS

    def round_trips(self) -> list[RoundTrip]:
        return self.portfolio.round_trips
