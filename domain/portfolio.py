"""The coordinator's core: approve intents, turn them into two-leg orders, apply fills, handle leg
risk, and close round trips with their PnL. Pure: books, FX and the clock are passed in.

A pair position's coin held on each venue is the exact sum of its fills; it is open when both
legs hold the same size, flat when both hold none. Orphan legs are unwound or completed by policy.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal

from domain.book import Book
from domain.ledger import UNIT, ZERO, DuplicateEvent, Effect, Ledger, dec
from domain.orders import Direction, Fill, Order, OrderIntent, Purpose, RoundTrip, Side
from domain.params import Market, RiskLimits
from domain.premium import FxQuote
from domain.risk import Decision, Exposure, RiskState, check_entry, funding_for
from domain.strategy import PositionView
from domain.venues import Venue

MAX_LEG_ATTEMPTS = 5


@dataclass(slots=True)
class PairPosition:
    """One pair position through its life: opening -> open -> closing -> closed (or failed)."""

    position_id: str
    symbol: str
    direction: Direction
    bn_venue: str
    state: str                     # opening | open | closing | closed | failed | stuck
    target_qty: float
    entry_ts_ms: int
    entry_reason: str
    coin: dict[str, Decimal] = field(default_factory=dict)       # venue -> signed coin held
    legs: dict[str, list[float]] = field(default_factory=dict)  # "purpose/venue" -> [qty, notional]
    open_orders: dict[str, Order] = field(default_factory=dict)
    krw_delta: Decimal = ZERO
    usdt_delta: Decimal = ZERO
    fees_krw: Decimal = ZERO
    fees_usdt: Decimal = ZERO
    slip_krw: float = 0.0
    slip_usdt: float = 0.0
    leg_risk_krw: float = 0.0
    leg_risk_usdt: float = 0.0
    funding_usdt: Decimal = ZERO
    fx_entry: float = 0.0
    qty: float = 0.0               # matched size once open
    exit_reason: str = ""
    attempts: int = 0
    seq: int = 0

    def held(self, venue: str) -> Decimal:
        return self.coin.get(venue, ZERO)

    def vwap(self, purpose: Purpose, venue: str) -> float:
        q, n = self.legs.get(f"{purpose.value}/{venue}", (0.0, 0.0))
        return n / q if q else 0.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What applying a fill led to: follow-up orders, and news for the symbol's strategy."""

    orders: tuple[Order, ...] = ()
    opened: PositionView | None = None
    closed: RoundTrip | None = None
    failed: bool = False           # entry failed: the strategy is flat again
    stuck: str = ""                # a leg that could not be completed after retries


@dataclass(frozen=True, slots=True)
class ExternalBooking:
    """What booking fills the portfolio did not order (a kill switch's flatten) led to."""

    closed: tuple[RoundTrip, ...] = ()
    left_open: tuple[str, ...] = ()     # positions the fills reduced but did not flatten
    unattributed: tuple[tuple[str, str, Decimal], ...] = ()  # (venue, coin, qty bought > 0 / sold < 0) no
    #                                                          open position held: in the ledger only


def _share(total: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    return (total * part / whole).quantize(UNIT, ROUND_HALF_EVEN)


def _entry_side(direction: Direction, venue: str) -> Side:
    upbit_sells = direction is Direction.RICH
    if venue == Venue.UPBIT.value:
        return Side.SELL if upbit_sells else Side.BUY
    return Side.BUY if upbit_sells else Side.SELL


def _flip(side: Side) -> Side:
    return Side.BUY if side is Side.SELL else Side.SELL


class Portfolio:
    """Positions, orders and round trips over the exact ledger, with the risk guards in front."""

    def __init__(self, market: Market, limits: RiskLimits, ledger: Ledger, hedge: str = "inventory",
                 usd_krw_reference: float | None = None):
        self.market, self.limits, self.ledger, self.hedge = market, limits, ledger, hedge
        self.bn_venue = Venue.BINANCE_USDM.value if hedge == "perp" else Venue.BINANCE.value
        self.usd_ref = usd_krw_reference
        self.risk = RiskState()
        self.positions: dict[str, PairPosition] = {}
        self.orders: dict[str, Order] = {}
        self.round_trips: list[RoundTrip] = []
        self.decisions: list[Decision] = []
        self.failed_entries = 0
        self.stuck_legs: list[str] = []

    # -- intents -----------------------------------------------------------------------------
    def submit(self, intent: OrderIntent, upbit: Book, binance: Book, fx: FxQuote) -> tuple[Decision | None, list[Order]]:
        """Approve (entry: guards and balances) and turn an intent into its two leg orders."""
        if intent.purpose is Purpose.EXIT:
            pos = self.positions.get(intent.position_id)
            if pos is None or pos.state != "open":
                return None, []
            pos.state, pos.exit_reason = "closing", intent.reason
            return None, [self._order(pos, v, _flip(_entry_side(pos.direction, v)), pos.qty, Purpose.EXIT,
                                      intent.ts_ms, upbit, binance) for v in (Venue.UPBIT.value, self.bn_venue)]
        if intent.position_id in self.positions:   # a replayed intent: never open twice
            return None, []
        decision = self._check(intent, upbit, binance)
        self.decisions.append(decision)
        if not decision.allowed:
            return decision, []
        coarse = max((self.market.rules_for(Venue(v), intent.symbol) for v in (Venue.UPBIT.value, self.bn_venue)),
                     key=lambda r: r.lot_size)
        qty = coarse.round_qty(decision.qty)   # both legs the same size, on the coarser lot
        pos = PairPosition(intent.position_id, intent.symbol, intent.direction, self.bn_venue, "opening",
                           qty, intent.ts_ms, intent.reason, fx_entry=fx.mid)
        self.positions[pos.position_id] = pos
        self.risk.on_entry(intent.symbol, intent.ts_ms)
        return decision, [self._order(pos, v, _entry_side(pos.direction, v), qty, Purpose.ENTRY,
                                      intent.ts_ms, upbit, binance) for v in (Venue.UPBIT.value, self.bn_venue)]

    def _check(self, intent: OrderIntent, upbit: Book, binance: Book) -> Decision:
        sym = intent.symbol
        up_rules = self.market.rules_for(Venue.UPBIT, sym)
        bn_rules = self.market.rules_for(Venue(self.bn_venue), sym)
        led = self.ledger
        bn_quote = led.balance(self.bn_venue, "USDT")
        funding = funding_for(intent.direction, self.hedge,
                              float(led.balance("upbit", sym)), float(led.balance("upbit", "KRW")),
                              float(led.balance(self.bn_venue, sym)), float(bn_quote),
                              upbit.best_ask, binance.best_ask, up_rules.taker_fee, bn_rules.taker_fee)
        min_qty = max(up_rules.min_notional / upbit.mid, bn_rules.min_notional / binance.mid,
                      up_rules.lot_size, bn_rules.lot_size)
        return check_entry(intent, upbit.mid, self.limits, self.risk, self.exposure(),
                           funding, (Venue.UPBIT.value, self.bn_venue), min_qty)

    def exposure(self) -> Exposure:
        by_symbol: dict[str, float] = {}
        for pos in self.positions.values():
            if pos.state in ("opening", "open", "closing", "stuck"):
                notional = pos.target_qty * (pos.vwap(Purpose.ENTRY, Venue.UPBIT.value) or 0.0)
                by_symbol[pos.symbol] = by_symbol.get(pos.symbol, 0.0) + notional
        total = sum(by_symbol.values())
        return Exposure(by_symbol, {Venue.UPBIT.value: total, self.bn_venue: total},
                        sum(1 for p in self.positions.values() if p.state in ("opening", "open", "closing", "stuck")))

    def _order(self, pos: PairPosition, venue: str, side: Side, qty: float, purpose: Purpose,
               now_ms: int, upbit: Book, binance: Book) -> Order:
        pos.seq += 1
        book = upbit if venue == Venue.UPBIT.value else binance
        rules = self.market.rules_for(Venue(venue), pos.symbol)
        ref = book.best_ask if side is Side.BUY else book.best_bid
        order = Order(f"{pos.position_id}-{purpose.value}-{venue}-{pos.seq}", pos.position_id, venue,
                      pos.symbol, side, rules.round_qty(qty), now_ms, now_ms + rules.latency_ms, purpose, ref)
        pos.open_orders[order.order_id] = order
        self.orders[order.order_id] = order
        return order

    # -- fills -------------------------------------------------------------------------------
    def on_fill(self, fill: Fill, fx: FxQuote, upbit: Book, binance: Book) -> Outcome:
        """Apply a fill once; when a phase's orders are all done, move the position on."""
        try:
            effect = self.ledger.apply(fill)
        except DuplicateEvent:
            return Outcome()
        pos = self.positions[fill.position_id]
        order = pos.open_orders.pop(fill.order_id)
        self._account(pos, order, fill, effect, fx)
        if pos.open_orders:
            return Outcome()
        if pos.state == "opening":
            return self._settle_entry(pos, fill.ts_ms, fx, upbit, binance)
        if pos.state == "closing":
            return self._settle_exit(pos, fill.ts_ms, fx, upbit, binance)
        return Outcome()

    def _account(self, pos: PairPosition, order: Order, fill: Fill, effect, fx: FxQuote) -> None:
        qty = dec(fill.qty)
        pos.coin[fill.venue] = pos.held(fill.venue) + (qty if fill.side is Side.BUY else -qty)
        key = f"{order.purpose.value}/{fill.venue}"
        leg = pos.legs.setdefault(key, [0.0, 0.0])
        leg[0] += fill.qty
        leg[1] += fill.notional
        cash = sum((d for (v, a), d in effect.deltas if a in ("KRW", "USDT")), ZERO)
        adverse = abs(fill.price - order.ref_price) * fill.qty if fill.qty else 0.0
        if fill.venue == Venue.UPBIT.value:
            pos.krw_delta += cash
            pos.fees_krw += effect.fee
            pos.slip_krw += adverse * (1 if fill.slippage_bps > 0 else 0)
        else:
            pos.usdt_delta += cash
            pos.fees_usdt += effect.fee
            pos.slip_usdt += adverse * (1 if fill.slippage_bps > 0 else 0)
        if order.purpose is Purpose.UNWIND and fill.qty:
            entry_px = pos.vwap(Purpose.ENTRY, fill.venue)
            loss = (entry_px - fill.price) * fill.qty if fill.side is Side.SELL else (fill.price - entry_px) * fill.qty
            loss += fill.fee
            if fill.venue == Venue.UPBIT.value:
                pos.leg_risk_krw += loss
            else:
                pos.leg_risk_usdt += loss

    def _settle_entry(self, pos: PairPosition, now_ms: int, fx: FxQuote, upbit: Book, binance: Book) -> Outcome:
        up, bn = abs(pos.held(Venue.UPBIT.value)), abs(pos.held(pos.bn_venue))
        lot = dec(max(self.market.rules_for(Venue.UPBIT, pos.symbol).lot_size,
                      self.market.rules_for(Venue(pos.bn_venue), pos.symbol).lot_size))
        if abs(up - bn) >= lot and pos.attempts < MAX_LEG_ATTEMPTS:
            pos.attempts += 1
            big, small = (Venue.UPBIT.value, pos.bn_venue) if up > bn else (pos.bn_venue, Venue.UPBIT.value)
            gap = float(abs(up - bn))
            if self.market.leg_risk_policy == "complete" and pos.attempts == 1:
                order = self._order(pos, small, _entry_side(pos.direction, small), gap, Purpose.COMPLETE,
                                    now_ms, upbit, binance)
            else:
                order = self._order(pos, big, _flip(_entry_side(pos.direction, big)), gap, Purpose.UNWIND,
                                    now_ms, upbit, binance)
            if order.qty > 0:
                return Outcome(orders=(order,))
            pos.open_orders.pop(order.order_id)
        matched = float(min(up, bn))
        if matched <= 0 or abs(up - bn) >= lot:
            if abs(up - bn) >= lot:
                pos.state = "stuck"
                self.stuck_legs.append(pos.position_id)
                return Outcome(stuck=f"{pos.position_id}: entry legs differ by {abs(up - bn)} after {pos.attempts} attempts")
            self.failed_entries += 1
            if pos.krw_delta or pos.usdt_delta:   # something traded and was unwound: book its cost
                return Outcome(closed=self._close(pos, now_ms, fx, "failed_entry"), failed=True)
            pos.state = "failed"
            return Outcome(failed=True)
        pos.state, pos.qty, pos.attempts = "open", matched, 0
        up_px = pos.vwap(Purpose.ENTRY, Venue.UPBIT.value) or pos.vwap(Purpose.COMPLETE, Venue.UPBIT.value)
        bn_px = pos.vwap(Purpose.ENTRY, pos.bn_venue) or pos.vwap(Purpose.COMPLETE, pos.bn_venue)
        premium = up_px / (bn_px * fx.mid) - 1.0
        return Outcome(opened=PositionView(pos.position_id, pos.direction, matched, premium, pos.entry_ts_ms))

    def _settle_exit(self, pos: PairPosition, now_ms: int, fx: FxQuote, upbit: Book, binance: Book) -> Outcome:
        orders = []
        for venue in (Venue.UPBIT.value, pos.bn_venue):
            left = pos.held(venue)
            rules = self.market.rules_for(Venue(venue), pos.symbol)
            if abs(left) < dec(rules.lot_size):
                continue
            order = self._order(pos, venue, Side.SELL if left > 0 else Side.BUY, float(abs(left)),
                                Purpose.COMPLETE, now_ms, upbit, binance)
            if order.qty > 0:
                orders.append(order)
            else:  # rounded to nothing: never sent, so not outstanding
                pos.open_orders.pop(order.order_id)
        if orders:
            pos.attempts += 1
            if pos.attempts > MAX_LEG_ATTEMPTS:
                for o in orders:
                    pos.open_orders.pop(o.order_id)
                pos.state = "stuck"
                self.stuck_legs.append(pos.position_id)
                return Outcome(stuck=f"{pos.position_id}: exit legs not completed after {MAX_LEG_ATTEMPTS} attempts")
            return Outcome(orders=tuple(orders))
        return Outcome(closed=self._close(pos, now_ms, fx, pos.exit_reason))

    def _close(self, pos: PairPosition, now_ms: int, fx: FxQuote, reason: str) -> RoundTrip:
        rate = fx.mid
        pos.state = "closed" if reason != "failed_entry" else "failed"
        residual = sum(float(pos.held(v)) for v in pos.coin)  # lot dust, valued at the Upbit exit price
        up_exit = pos.vwap(Purpose.EXIT, Venue.UPBIT.value)
        pnl_krw = float(pos.krw_delta) + float(pos.usdt_delta) * rate + residual * up_exit
        funding_krw = float(pos.funding_usdt) * rate
        bn_entry, bn_exit = pos.vwap(Purpose.ENTRY, pos.bn_venue), pos.vwap(Purpose.EXIT, pos.bn_venue)
        up_entry = pos.vwap(Purpose.ENTRY, Venue.UPBIT.value)
        entry_prem = up_entry / (bn_entry * pos.fx_entry) - 1.0 if bn_entry and up_entry else 0.0
        exit_prem = up_exit / (bn_exit * rate) - 1.0 if bn_exit and up_exit else 0.0
        rt = RoundTrip(
            position_id=pos.position_id, symbol=pos.symbol, direction=pos.direction,
            entry_ts_ms=pos.entry_ts_ms, exit_ts_ms=now_ms, qty=pos.qty,
            entry_premium=entry_prem, exit_premium=exit_prem, exit_reason=reason,
            pnl_krw=pnl_krw, pnl_usd=pnl_krw / (self.usd_ref or rate),
            fees_krw=float(pos.fees_krw) + float(pos.fees_usdt) * rate,
            slippage_krw=pos.slip_krw + pos.slip_usdt * rate, funding_krw=funding_krw,
            fx_drift_krw=float(pos.usdt_delta) * (rate - pos.fx_entry),
            leg_risk_krw=pos.leg_risk_krw + pos.leg_risk_usdt * rate,
            krw_delta=str(pos.krw_delta), usdt_delta=str(pos.usdt_delta))
        self.round_trips.append(rt)
        self.risk.on_round_trip(pos.symbol, now_ms, pnl_krw, self.limits)
        return rt

    # -- fills of orders placed outside the portfolio (kill switch) -------------------------------
    def close_external(self, executions: Sequence[tuple[Order, Fill]], now_ms: int, fx: FxQuote,
                       reason: str = "kill_switch") -> ExternalBooking:
        """Book venue executions the portfolio did not order, each (order as sent, its fill), once.

        The ledger takes every fill whole (it must match the venue). Each fill is then attributed,
        oldest position first, to the open positions of its coin whose holding on that venue it
        trades back, as an exit leg; a position left flat is closed with `reason` like any exit, one
        left holding coin becomes "stuck", and what no position held is returned, never dropped.
        """
        touched: dict[str, PairPosition] = {}
        unattributed = []
        for order, fill in executions:
            try:
                effect = self.ledger.apply(fill)
            except DuplicateEvent:
                continue
            if fill.qty <= 0:
                continue
            left = self._attribute(order, fill, effect, fx, touched)
            if left:
                unattributed.append((fill.venue, fill.symbol, -left if fill.side is Side.SELL else left))
        closed, left_open = [], []
        for pos in touched.values():
            rt = self._settle_external(pos, now_ms, fx, reason)
            if rt is not None:
                closed.append(rt)
            else:
                left_open.append(pos.position_id)
        return ExternalBooking(tuple(closed), tuple(left_open), tuple(unattributed))

    def _attribute(self, order: Order, fill: Fill, effect: Effect, fx: FxQuote,
                   touched: dict[str, PairPosition]) -> Decimal:
        """Split one booked fill over the positions holding what it trades back; return the qty left.

        Cash and fee go by qty share, exact to the ledger unit: the last piece takes the remainder,
        so the pieces sum to the ledger's booking when the whole fill is attributed.
        """
        qty = remaining = dec(fill.qty)
        cash = sum((d for (_, a), d in effect.deltas if a in ("KRW", "USDT")), ZERO)
        cash_key = effect.fee_asset
        cash_left, fee_left = cash, effect.fee
        sign = 1 if fill.side is Side.SELL else -1      # a sell trades back coin held, a buy coin owed
        for pos in self.open_positions():
            if remaining <= 0:
                break
            held = pos.held(fill.venue) * sign
            if pos.symbol != fill.symbol or held <= 0:
                continue
            part = min(remaining, held)
            remaining -= part
            piece_cash = cash_left if remaining == 0 else _share(cash, part, qty)
            piece_fee = fee_left if remaining == 0 else _share(effect.fee, part, qty)
            cash_left, fee_left = cash_left - piece_cash, fee_left - piece_fee
            piece = replace(fill, position_id=pos.position_id, requested_qty=float(part), qty=float(part),
                            fee=float(piece_fee))
            leg = replace(order, position_id=pos.position_id, qty=float(part), purpose=Purpose.EXIT)
            self._account(pos, leg, piece, Effect(((cash_key, piece_cash),), piece_fee, cash_key), fx)
            touched[pos.position_id] = pos
        return remaining

    def _settle_external(self, pos: PairPosition, now_ms: int, fx: FxQuote, reason: str) -> RoundTrip | None:
        """Close a position the external fills left flat (lot dust aside); mark one still holding coin stuck."""
        if pos.open_orders:   # an order of its own is still unsettled: its fill decides what comes next
            return None
        rules = {v: self.market.rules_for(Venue(v), pos.symbol) for v in pos.coin}
        if all(abs(pos.held(v)) < dec(rules[v].lot_size) for v in pos.coin):
            return self._close(pos, now_ms, fx, reason)
        pos.state = "stuck"
        return None

    def apply_funding(self, funding_id: str, coin: str, rate_8h: float, mark_price: float) -> None:
        """Funding on the open perp leg of `coin`: shorts receive a positive rate, longs pay."""
        perp = self.ledger.perps.get(coin)
        if perp is None or perp.qty == 0 or self.ledger.seen(funding_id):
            return
        amount = -perp.qty * dec(mark_price) * dec(rate_8h)
        self.ledger.apply_funding(funding_id, coin, amount)
        open_pos = [p for p in self.positions.values() if p.symbol == coin and p.state in ("open", "closing")]
        if open_pos:
            open_pos[0].usdt_delta += dec(amount)
            open_pos[0].funding_usdt += dec(amount)

    def open_positions(self) -> list[PairPosition]:
        return [p for p in self.positions.values() if p.state in ("opening", "open", "closing", "stuck")]
