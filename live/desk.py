"""The coordinator's core in live mode: PaperDesk's interface and its domain Portfolio (same guards,
same ledger, same leg-risk policy), with orders sent through LiveVenue instead of the fill model.

An intent is approved exactly as in paper (domain.portfolio / domain.risk); each leg order goes to
its venue as a limit IOC inside a slippage band (or a market order); the venue's final word on the
order becomes one domain Fill booked into the ledger, and whatever the portfolio answers (an unwind
of an orphan leg, the completion of an exit) is sent the same way, with real orders.

An order whose fate the venue could not tell (it stayed unreachable through the retries) is never
resent: it waits in `unresolved` until `reconcile()` finds it by its client id.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from domain.book import Book
from domain.fills import fill_for
from domain.ledger import ZERO, dec
from domain.orders import Fill, Order, OrderIntent, Purpose
from domain.portfolio import ExternalBooking, Outcome
from domain.premium import FxQuote, NoFxRate
from domain.venues import Venue
from live.errors import OrderRejected, OrderRuleError, VenueAuthError, VenueError, VenueUnavailable
from live.redact import redact
from live.killswitch import Exposure, KillFill, KillReport, KillSwitch
from live.venue import LiveVenue, PlaceRequest, VenueOrder, protective_price
from paper.desk import News, PaperDesk

AUTO_KILL = ("stuck_leg", "daily_loss")   # breaches that engage the kill switch by themselves
BALANCE_TOLERANCE = 1e-6   # absolute: float venue amounts against the ledger's 1e-8 Decimals
STUCK_RECONCILES = 3       # reconciles an order may stay unresolved before a P1 asks a person to look
# Third assets a venue may take fees in (Binance's BNB discount): the ledger opens with their balances, so
# a fee paid in one is booked against the venue's own figure and reconciles.
FEE_ASSETS = {Venue.BINANCE: ("BNB",), Venue.BINANCE_USDM: ("BNB",)}


class NotBookable(RuntimeError):
    """A venue's word on an order that the desk cannot book yet (no book of its coin, no FX rate)."""


@dataclass(frozen=True, slots=True)
class Drift:
    """One place where the venue and our books disagree."""

    venue: str
    what: str           # asset or "position:<coin>"
    venue_amount: float
    ours: float

    @property
    def delta(self) -> float:
        return self.venue_amount - self.ours


@dataclass(frozen=True, slots=True)
class LiveAlert:
    """An alert the desk raised: severity P0..P3, kind, text, symbol (the coordinator sends it on)."""

    severity: str
    kind: str
    message: str
    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What reconcile found: orders it settled, orders still unknown, foreign orders, drifts."""

    booked: tuple[str, ...]
    unresolved: tuple[str, ...]
    foreign_orders: tuple[str, ...]
    drifts: tuple[Drift, ...]
    errors: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not (self.unresolved or self.foreign_orders or self.drifts or self.errors)


async def venue_balances(venues: Mapping[Venue, LiveVenue], symbols: list[str]) -> dict[tuple[str, str], float]:
    """Starting ledger balances read from the venues: quote cash, every traded coin (spot) and the assets
    the venue may take fees in."""
    out: dict[tuple[str, str], float] = {}
    for venue, lv in venues.items():
        held = await lv.balances()
        assets = [venue.quote] + ([] if venue is Venue.BINANCE_USDM else list(symbols))
        assets += [a for a in FEE_ASSETS.get(venue, ()) if a not in assets]
        for asset in assets:
            out[(venue.value, asset)] = held[asset].total if asset in held else 0.0
    return out


class LiveDesk(PaperDesk):
    """PaperDesk whose orders go to real venues. `submit`, `finish` and `reconcile` are coroutines."""

    def __init__(self, symbols: list[str], strategy: Any, limits: Any, market: Any, fx: Any, balances: dict, *,
                 venues: Mapping[Venue, LiveVenue], order_style: str = "limit_ioc", band_bps: float = 50.0,
                 kill_switch: KillSwitch | None = None, kill_on: tuple[str, ...] = AUTO_KILL,
                 max_order_krw: float | None = None, max_total_krw: float | None = None,
                 **engine_kw: Any) -> None:
        super().__init__(symbols, strategy, limits, market, fx, balances, **engine_kw)
        if order_style not in ("limit_ioc", "market"):
            raise ValueError(f"LiveDesk: order_style {order_style!r}: expected 'limit_ioc' or 'market'")
        if not 0 < band_bps <= 500:
            raise ValueError(f"LiveDesk: band_bps {band_bps} must be in (0, 500]")
        needed = {Venue.UPBIT, Venue(self.bn_venue)}
        if not needed <= set(venues):
            raise ValueError(f"LiveDesk: hedge {strategy.hedge!r} trades {sorted(v.value for v in needed)}; "
                             f"venues given: {sorted(v.value for v in venues)}")
        self.venues = dict(venues)
        self.order_style, self.band_bps = order_style, band_bps
        self.unresolved: dict[str, Order] = {}          # order id -> order whose outcome is not booked yet
        self.unresolved_misses: dict[str, int] = {}     # order id -> reconciles that could not settle it
        self.sent: dict[str, str] = {}                  # order id -> client id, every order sent
        self.fee_shift: dict[tuple[str, str], Decimal] = {}  # what venue balances differ by, by design
        self._tasks: set[asyncio.Task] = set()
        unknown = set(kill_on) - set(AUTO_KILL)
        if unknown:
            raise ValueError(f"LiveDesk: kill_on {sorted(unknown)} unknown; expected some of {AUTO_KILL}")
        self.kill_switch, self.kill_on = kill_switch, tuple(kill_on)
        self.max_order_krw, self.max_total_krw = max_order_krw, max_total_krw   # the armed caps
        self.kill_reports: list[KillReport] = []
        self.live_alerts: list[LiveAlert] = []     # what a person must hear, typed for the dispatcher
        self.reconcile_reports: list[ReconcileReport] = []
        self._seen_stuck = 0
        self._seen_decisions = 0
        # Called with each order just before it goes to its venue (the coordinator writes its snapshot
        # there), so a crash at any point leaves the order in Redis for a resumed run to look up.
        self.before_send: Callable[[Order], None] | None = None
        self.resumed: dict | None = None     # what a resumed run restored (live.resume), for the KPI file

    @classmethod
    async def open(cls, symbols: list[str], params: Any, venues: Mapping[Venue, LiveVenue], **kw: Any) -> "LiveDesk":
        """A desk whose ledger starts from the balances the venues hold now."""
        traded = {Venue.UPBIT, Venue.BINANCE_USDM if params.strategy.hedge == "perp" else Venue.BINANCE}
        balances = await venue_balances({v: lv for v, lv in venues.items() if v in traded}, symbols)
        return cls(symbols, params.strategy, params.risk, params.market, params.fx, balances, venues=venues, **kw)

    def alert(self, severity: str, kind: str, message: str, symbol: str | None = None) -> None:
        """Record an alert twice: its text in the trace (the KPI count), typed for the alert dispatcher."""
        self.trace.alerts.append(message)
        self.live_alerts.append(LiveAlert(severity, kind, message, symbol))

    def __getstate__(self) -> dict:
        """Ray pickles the desk for KPI checkpoints: the venue clients, kill switch and tasks stay here
        (sockets cannot travel); the copy keeps the venue counters as they stand."""
        state = dict(self.__dict__)
        state["_frozen_venue_stats"] = self.venue_stats()
        state["venues"], state["kill_switch"], state["_tasks"] = {}, None, set()
        state["before_send"] = None
        return state

    def history_seen(self) -> None:
        """Only stuck legs and guard decisions from now on may engage the kill switch (after a restore:
        the history was judged by the run that made it)."""
        self._seen_stuck, self._seen_decisions = len(self.portfolio.stuck_legs), len(self.portfolio.decisions)

    # ---- the PaperDesk interface ----
    async def submit(self, intent: OrderIntent) -> None:  # type: ignore[override]
        """Approve through the domain portfolio, send the legs, and wait until every order it led to is done."""
        frozen = self.portfolio.risk.frozen
        if frozen and intent.purpose is Purpose.EXIT:
            self.alert("P1", "exit_held", f"exit {intent.intent_id} held: positions frozen ({frozen})", intent.symbol)
            self.news.append(News(intent.symbol, "rejected", self.now))
            return
        if intent.purpose is Purpose.ENTRY:
            intent = self._capped(intent)
            if intent is None:
                return
        PaperDesk.submit(self, intent)
        await self.drain()
        await self._auto_kill()

    def _capped(self, intent: OrderIntent) -> OrderIntent | None:
        """The armed caps: an entry shrinks to the per-order cap; one that breaks the total is refused."""
        upbit = self.books.get((Venue.UPBIT.value, intent.symbol))
        binance = self.books.get((self.bn_venue, intent.symbol))
        try:
            rate = self.fx().mid
        except NoFxRate:
            rate = None
        if upbit is None or not upbit.asks or binance is None or not binance.asks or rate is None:
            return intent           # PaperDesk.submit rejects it for want of a book
        # Each leg must fit the cap: size on the dearer leg in KRW (the premium can be either way round).
        price, qty = max(upbit.best_ask, binance.best_ask * rate), intent.qty
        if self.max_order_krw is not None:
            qty = min(qty, self.max_order_krw / price)
        room = None if self.max_total_krw is None else self.max_total_krw - self.portfolio.exposure().total
        if room is not None and qty * price > room:
            self.alert("P2", "armed_cap", f"entry {intent.intent_id} refused: {qty * price:,.0f} KRW would pass the "
                        f"total cap {self.max_total_krw:,.0f} KRW ({max(room, 0):,.0f} left)", intent.symbol)
            self.news.append(News(intent.symbol, "rejected", self.now))
            return None
        return intent if qty >= intent.qty else replace(intent, qty=qty)

    async def drain(self) -> None:
        """Wait until no order is in flight (follow-up orders included)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def finish(self) -> None:  # type: ignore[override]
        await self.drain()
        PaperDesk.finish(self)

    def _funding(self, ts: int) -> None:
        """Live funding is what the venue charges: see book_funding()."""

    async def book_funding(self) -> int:
        """Book the current 8 h period's funding on each open perp leg at the venue's rate and mark."""
        if self.hedge != "perp":
            return 0
        period = self.now - self.now % (8 * 3_600_000)
        booked = 0
        for coin, perp in list(self.ledger.perps.items()):
            funding_id = f"funding-{coin}-{period}"
            if perp.qty == 0 or self.ledger.seen(funding_id):
                continue
            quote = await self.venues[Venue.BINANCE_USDM].funding(coin)
            self.portfolio.apply_funding(funding_id, coin, quote.rate, quote.mark_price)
            booked += 1
        return booked

    # ---- kill switch ----
    async def kill(self, reason: str, policy: str | None = None) -> KillReport:
        """Freeze new trading, then cancel everything and flatten or freeze what the desk holds."""
        if self.kill_switch is None:
            raise RuntimeError("LiveDesk.kill: no kill switch configured")
        self.portfolio.risk.frozen = reason
        await self.drain()
        exposures = [Exposure(Venue(v), coin, qty) for v, coin, qty in self.open_exposure()]
        report = await self.kill_switch.engage(reason, exposures, policy)
        self.kill_reports.append(report)
        booking = self.book_kill(report.fills)
        self.alert("P0", "kill_switch", f"kill switch ({report.policy}) for {reason}: {len(report.cancelled)} "
                    f"cancelled, {len(report.closed)} closed, left open: "
                    f"{list(report.not_cancelled + report.not_closed) or 'nothing'}")
        if booking.left_open or booking.unattributed:
            self.alert("P1", "kill_partial", f"kill switch flatten booked: positions still holding coin "
                        f"{list(booking.left_open)}, traded but held by no position "
                        f"{[(v, c, str(q)) for v, c, q in booking.unattributed]}")
        return report

    def book_kill(self, fills: tuple[KillFill, ...]) -> ExternalBooking:
        """The flatten's executions into the ledger and the positions; those it flattened close as kill_switch."""
        if not fills:
            return ExternalBooking()
        executions = [self.kill_execution(kf) for kf in fills]
        if self.keep_fills:
            self.trace.fills.extend(fill for _, fill in executions)
        booking = self.portfolio.close_external(executions, self.now, self.fx())
        for kf, (_, fill) in zip(fills, executions):
            self._book_fees(kf.venue.value, kf.coin, kf.fee_coin, kf.average, kf.fee_other, fill.fill_id)
        for rt in booking.closed:
            self._handle(Outcome(closed=rt), rt.symbol)
        return booking

    def kill_execution(self, kf: KillFill) -> tuple[Order, Fill]:
        """A kill order as a domain (order, fill): an exit priced from kf.ref_price, owned by no position
        (the portfolio attributes it)."""
        order = Order(kf.order_id, "", kf.venue.value, kf.coin, kf.side, kf.filled, self.now, self.now,
                      Purpose.EXIT, kf.ref_price)
        return order, self.reported_fill(order, kf.filled, kf.average, kf.fee, kf.ts_ms)

    async def _auto_kill(self) -> None:
        """Engage the kill switch on a breach named in kill_on (once: a frozen desk stays frozen)."""
        stuck = self.portfolio.stuck_legs[self._seen_stuck:]
        decisions = self.portfolio.decisions[self._seen_decisions:]
        self._seen_stuck, self._seen_decisions = len(self.portfolio.stuck_legs), len(self.portfolio.decisions)
        if self.kill_switch is None or self.portfolio.risk.frozen:
            return
        if stuck and "stuck_leg" in self.kill_on:
            await self.kill(f"stuck leg {', '.join(stuck)}")
        elif "daily_loss" in self.kill_on and any(d.guard == "daily_loss" for d in decisions):
            await self.kill("daily loss limit reached")

    # ---- orders ----
    def _send(self, orders) -> None:
        for order in orders:
            if self.keep_fills:
                self.trace.orders.append(order)
            task = asyncio.get_running_loop().create_task(self._execute_live(order))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def request_for(self, order: Order) -> PlaceRequest:
        """The venue order for a domain order: IOC inside the band, reduce-only for perp exits."""
        rules = self.market.rules_for(Venue(order.venue), order.symbol)
        pos = self.portfolio.positions.get(order.position_id)
        closing = order.purpose in (Purpose.EXIT, Purpose.UNWIND) or (
            order.purpose is Purpose.COMPLETE and pos is not None and pos.state == "closing")
        price = (order.limit_price if order.limit_price is not None else
                 protective_price(rules, order.ref_price, order.side, self.band_bps))
        kind = "limit_ioc" if order.limit_price is not None else self.order_style
        return PlaceRequest(order.order_id, order.symbol, order.side, order.qty,
                            price if kind == "limit_ioc" else order.ref_price, kind,
                            reduce_only=order.venue == Venue.BINANCE_USDM.value and closing)

    async def _execute_live(self, order: Order) -> None:
        venue = self.venues[Venue(order.venue)]
        request = self.request_for(order)
        self.sent[order.order_id] = venue.client_id(order.order_id)
        try:
            self._check_cap(order)
            if self.before_send is not None:
                self.before_send(order)
            result = await venue.place(request)
        except (OrderRuleError, OrderRejected, VenueAuthError) as exc:   # nothing was placed
            self.alert("P1", "order_refused", f"order {order.order_id} refused: {redact(exc)}", order.symbol)
            self._settle(order, None)
            return
        except (VenueUnavailable, VenueError) as exc:                     # fate unknown: never resend
            self.unresolved[order.order_id] = order
            self.portfolio.risk.degraded_venues.add(order.venue)
            self.alert("P1", "order_unresolved", f"order {order.order_id} unresolved, {order.venue} degraded: "
                        f"{redact(exc)}", order.symbol)
            return
        self.portfolio.risk.degraded_venues.discard(order.venue)
        self._settle(order, result)

    def _settle(self, order: Order, result: VenueOrder | None) -> None:
        """Book the venue's final word; one that cannot be booked yet waits in `unresolved`, where
        reconcile asks the venue again by client id and books it."""
        try:
            self._book(order, result)
        except NotBookable as exc:
            self.unresolved[order.order_id] = order
            self.alert("P1", "order_unbooked", f"order {order.order_id} done on {order.venue} but not booked: "
                        f"{exc}; reconcile books it", order.symbol)

    def _check_cap(self, order: Order) -> None:
        """Backstop of the per-order cap on every entry leg, whatever sized it."""
        if self.max_order_krw is None or order.purpose is not Purpose.ENTRY:
            return
        notional = order.qty * order.ref_price * (1.0 if order.venue == Venue.UPBIT.value else self.fx().mid)
        if notional > self.max_order_krw * (1 + self.band_bps / 1e4):
            raise OrderRuleError(order.venue, f"{order.order_id}: {notional:,.0f} KRW is above the per-order "
                                              f"cap {self.max_order_krw:,.0f} KRW")

    def _book(self, order: Order, result: VenueOrder | None) -> None:
        """One domain Fill for one finished venue order (qty 0 when it filled nothing or was refused).
        Raises NotBookable before it changes anything, so the caller may keep the order and try again."""
        upbit, binance, fx = self._booking_inputs(order)
        fill = self.fill_of(order, result)
        if self.keep_fills:
            self.trace.fills.append(fill)
        outcome = self.portfolio.on_fill(fill, fx, upbit, binance)
        if result is not None:
            self._book_fees(order.venue, order.symbol, result.fee_coin, result.average, result.fee_other,
                            fill.fill_id)
        self._handle(outcome, order.symbol)

    def _booking_inputs(self, order: Order) -> tuple[Book, Book, FxQuote]:
        """Both venues' books of the order's coin and the FX rate, which booking its fill needs."""
        missing = [v for v in (Venue.UPBIT.value, self.bn_venue) if (v, order.symbol) not in self.books]
        if missing:
            raise NotBookable(f"no {', '.join(missing)} book of {order.symbol} yet")
        try:
            fx = self.fx()
        except NoFxRate as exc:
            raise NotBookable(str(exc)) from None
        return self.books[(Venue.UPBIT.value, order.symbol)], self.books[(self.bn_venue, order.symbol)], fx

    def _book_fees(self, venue: str, coin: str, fee_coin: float, price: float,
                   fee_other: tuple[tuple[str, float], ...], fill_id: str) -> None:
        """Fees the venue took outside the fill's quote fee. A coin-paid fee is in the fill's fee, converted:
        it moves the venue's balances against ours (fee_shift). One in a third asset (BNB) is a debit of that
        asset in the ledger; with no price for it, round-trip PnL leaves it out (said once per asset)."""
        if fee_coin:
            coin_key, quote_key = (venue, coin), (venue, Venue(venue).quote)
            self.fee_shift[coin_key] = self.fee_shift.get(coin_key, ZERO) - dec(fee_coin)
            self.fee_shift[quote_key] = self.fee_shift.get(quote_key, ZERO) + dec(fee_coin * price)
        for asset, amount in fee_other:
            if (venue, asset) not in self.ledger.balances:
                self.alert("P2", "fee_asset", f"{venue} took a fee of {amount:g} {asset} on {fill_id}, a balance the "
                            f"ledger did not open with: booked, but it differs from the venue's until a person "
                            f"looks", coin)
            elif (venue, asset) not in self.ledger.fees:
                self.alert("P3", "fee_other", f"{venue} takes fees in {asset}: booked as {asset} in the ledger, "
                            f"not valued in round-trip PnL or fees_paid_krw", coin)
            self.ledger.apply_fee(f"{fill_id}:{asset}", venue, asset, amount)

    @staticmethod
    def fill_of(order: Order, result: VenueOrder | None) -> Fill:
        if result is None:
            return fill_for(order, f"{order.order_id}-f", 0.0, 0.0, 0.0)
        return LiveDesk.reported_fill(order, result.filled, result.average, result.fee_quote, result.ts_ms)

    @staticmethod
    def reported_fill(order: Order, filled: float, average: float, fee: float, ts_ms: int) -> Fill:
        """The domain Fill of what a venue reported for `order` (qty 0 when nothing filled)."""
        if filled <= 0:
            return fill_for(order, f"{order.order_id}-f", 0.0, 0.0, 0.0)
        fill = fill_for(order, f"{order.order_id}-f", filled, average, fee)
        return replace(fill, ts_ms=max(order.ts_ms, ts_ms)) if ts_ms else fill

    # ---- reconcile ----
    async def reconcile(self) -> ReconcileReport:
        """Settle unresolved orders by client id, then compare open orders, balances and positions.

        An order leaves `unresolved` only once its outcome is booked; one the venue could not tell or the
        desk could not book stays for the next reconcile, and a P1 goes out after STUCK_RECONCILES."""
        await self.drain()
        booked, errors = [], []
        for order_id, order in list(self.unresolved.items()):
            venue = self.venues[Venue(order.venue)]
            try:
                # a client id is our order id under the run's tag: a resumed run also looks up an order
                # the crashed one made but may never have sent (then the venue has none: a zero fill)
                found = await venue.lookup(order.symbol, self.sent.get(order_id) or venue.client_id(order_id))
                if found is not None and not found.final:
                    found = await venue.cancel(order.symbol, found.order_id, found.client_id)
                self._book(order, found)    # None: the venue never saw it (or no longer keeps it), a zero fill
            except VenueError as exc:
                errors.append(self._not_settled(order_id, order, str(redact(exc))))
                continue
            except NotBookable as exc:
                error = f"{order.venue}: order {order_id} not booked: {exc}"
                errors.append(self._not_settled(order_id, order, error))
                continue
            del self.unresolved[order_id]
            self.unresolved_misses.pop(order_id, None)
            booked.append(order_id)
        await self.drain()
        foreign, drifts, failing = [], [], set()
        for v, lv in self.venues.items():
            try:
                foreign += [f"{v.value} {o.order_id} {o.coin} {o.side.value} {o.amount:g}"
                            for o in await lv.open_orders() if o.client_id not in self.sent.values()]
                drifts += await self._drifts(v, lv)
            except VenueError as exc:
                errors.append(str(redact(exc)))
                failing.add(v.value)
        # a venue that answered everything and owes us no order is healthy again
        failing |= {o.venue for o in self.unresolved.values()} | {e.split(":", 1)[0] for e in errors}
        for venue in list(self.portfolio.risk.degraded_venues):
            if venue not in failing:
                self.portfolio.risk.degraded_venues.discard(venue)
        report = ReconcileReport(tuple(booked), tuple(self.unresolved), tuple(foreign), tuple(drifts), tuple(errors))
        self.reconcile_reports.append(report)
        return report

    def _not_settled(self, order_id: str, order: Order, error: str) -> str:
        """Count a reconcile that left `order_id` unresolved; the P1 goes out once, at STUCK_RECONCILES."""
        misses = self.unresolved_misses[order_id] = self.unresolved_misses.get(order_id, 0) + 1
        if misses == STUCK_RECONCILES:
            self.alert("P1", "order_stuck", f"order {order_id} on {order.venue} unresolved after {misses} reconciles "
                        f"(last: {error}); its fill, if any, is not in the ledger", order.symbol)
        return error

    async def _drifts(self, venue: Venue, lv: LiveVenue) -> list[Drift]:
        out = []
        if any(v == venue.value for v, _ in self.ledger.balances):
            held = await lv.balances()
            for (v, asset), amount in self.ledger.balances.items():
                if v != venue.value:
                    continue
                ours = float(amount + self.fee_shift.get((v, asset), ZERO))
                theirs = held[asset].total if asset in held else 0.0
                if abs(theirs - ours) > BALANCE_TOLERANCE:
                    out.append(Drift(v, asset, theirs, ours))
        if venue is Venue.BINANCE_USDM:
            theirs_pos = await lv.positions()
            for coin in sorted(set(theirs_pos) | set(self.ledger.perps)):
                ours = float(self.ledger.perps[coin].qty) if coin in self.ledger.perps else 0.0
                if abs(theirs_pos.get(coin, 0.0) - ours) > 1e-12:
                    out.append(Drift(venue.value, f"position:{coin}", theirs_pos.get(coin, 0.0), ours))
        return out

    def venue_stats(self) -> dict[str, dict[str, int]]:
        """Requests, orders, 429s, failures, retries and recovered sends per venue."""
        if not self.venues:     # a pickled copy: the counters as they were when it was taken
            return dict(getattr(self, "_frozen_venue_stats", {}))
        return {v.value: lv.stats.to_dict() for v, lv in self.venues.items()}

    def open_exposure(self) -> list[tuple[str, str, float]]:
        """(venue, coin, signed qty) each open pair position holds: what a flatten has to trade back."""
        out = []
        for pos in self.portfolio.open_positions():
            for venue, held in pos.coin.items():
                if held != 0:
                    out.append((venue, pos.symbol, float(held)))
        return out
