"""Kill switch: cancel every open order, then flatten or freeze positions, and keep at it while a
venue fails; the report says what was done and, above all, what could not be.

Works from venue truth, so it also serves a process that crashed: open orders are listed by the
venue, USDT-M positions come from the venue, and spot exposure (coin a pair position moved between
venues) is handed in by whoever knows it (the desk, or a snapshot). Closing orders are limit IOC
inside a wide band around the venue's current book, reduce-only on USDT-M, under client ids unique to
this engagement, and every send is idempotent (LiveVenue.place): an order whose reply was lost is
looked up, never doubled. Exposures of one venue and coin are netted into one close. The report
carries each close's execution (KillFill) as the venue reported it, for the desk to book.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from domain.orders import Side
from domain.venues import Venue
from live.backoff import Backoff
from live.errors import OrderRejected, OrderRuleError, VenueAuthError, VenueError, VenueUnavailable
from live.redact import redact
from live.venue import LiveVenue, PlaceRequest, VenueOrder, protective_price

POLICIES = ("flatten", "freeze")
SHORT = {Venue.UPBIT: "u", Venue.BINANCE: "s", Venue.BINANCE_USDM: "f"}


@dataclass(frozen=True, slots=True)
class Exposure:
    """Coin held on a venue that a flatten trades back: qty > 0 is sold, qty < 0 bought."""

    venue: Venue
    coin: str
    qty: float


@dataclass(frozen=True, slots=True)
class KillFill:
    """One close order's execution as the venue reported it, for the desk to book into its ledger."""

    venue: Venue
    coin: str
    side: Side
    order_id: str          # ours (kill-...): the ledger books it once under this id
    filled: float
    average: float         # VWAP of its fills
    fee: float             # every fee, in fee_currency (a fee taken in the coin converted at `average`)
    fee_currency: str      # the venue's quote: KRW or USDT
    fee_coin: float = 0.0  # the part of `fee` the venue took in the coin (Binance spot buys)
    fee_other: tuple[tuple[str, float], ...] = ()   # fees in a third asset (BNB), not in `fee`
    ref_price: float = 0.0   # the book price the order was priced from (its slippage is against it)
    ts_ms: int = 0

    def to_dict(self) -> dict:
        return {**asdict(self), "venue": self.venue.value, "side": self.side.value,
                "fee_other": [list(f) for f in self.fee_other]}


@dataclass(frozen=True)
class KillReport:
    """Everything the kill switch did and left; `ok` only when nothing is left open."""

    reason: str
    policy: str
    started_ms: int
    duration_ms: int
    cancelled: tuple[str, ...] = ()
    not_cancelled: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()
    not_closed: tuple[str, ...] = ()
    frozen: tuple[str, ...] = ()
    fills: tuple[KillFill, ...] = ()   # what the closes executed, in the order the venues reported them

    @property
    def ok(self) -> bool:
        return not self.not_cancelled and not self.not_closed

    def to_dict(self) -> dict:
        return {"ok": self.ok, **asdict(self), "fills": [f.to_dict() for f in self.fills]}


@dataclass
class _Work:
    cancelled: list[str] = field(default_factory=list)
    not_cancelled: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    not_closed: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    fills: list[KillFill] = field(default_factory=list)


def _netted(exposures: Sequence[Exposure]) -> list[Exposure]:
    """One exposure per venue and coin, in first-seen order: close order ids are per venue and coin,
    so two closes of one coin would share an id and the venue would take only the first."""
    net: dict[tuple[Venue, str], float] = {}
    for e in exposures:
        net[(e.venue, e.coin)] = net.get((e.venue, e.coin), 0.0) + e.qty
    return [Exposure(venue, coin, qty) for (venue, coin), qty in net.items()]


def _execution(exposure: Exposure, side: Side, order_id: str, result: VenueOrder, ref: float) -> KillFill:
    """The KillFill of one close order the venue settled (`side` is what we sent)."""
    return KillFill(exposure.venue, exposure.coin, side, order_id, result.filled, result.average,
                    result.fee_quote, exposure.venue.quote, result.fee_coin, result.fee_other, ref, result.ts_ms)


class KillSwitch:
    """Cancels and flattens (or freezes) across `venues`, retrying each step until `deadline_s`."""

    def __init__(self, venues: Mapping[Venue, LiveVenue], policy: str = "flatten",
                 retry: Backoff | None = None, deadline_s: float = 60.0, band_bps: float = 200.0) -> None:
        if policy not in POLICIES:
            raise ValueError(f"kill switch: policy {policy!r} unknown; expected one of {POLICIES}")
        if not venues:
            raise ValueError("kill switch: no venue to act on")
        self.venues, self.policy = dict(venues), policy
        self.retry = retry or Backoff(base_s=0.2, cap_s=5.0, attempts=1_000)
        self.deadline_s, self.band_bps = deadline_s, band_bps

    async def engage(self, reason: str, exposures: Sequence[Exposure] = (), policy: str | None = None) -> KillReport:
        """Cancel every open order on every venue, then apply the policy to positions."""
        policy = policy or self.policy
        if policy not in POLICIES:
            raise ValueError(f"kill switch: policy {policy!r} unknown; expected one of {POLICIES}")
        started = time.time()
        deadline = time.monotonic() + self.deadline_s
        work = _Work()
        await asyncio.gather(*(self._cancel_all(v, lv, deadline, work) for v, lv in self.venues.items()))
        targets = await self._targets(exposures, deadline, work)
        if policy == "flatten":
            await asyncio.gather(*(self._close(e, deadline, work, int(started * 1000)) for e in targets))
        else:
            work.frozen += [f"{e.venue.value} {e.coin} {e.qty:+g}" for e in targets]
        return KillReport(reason, policy, int(started * 1000), int((time.time() - started) * 1000),
                          tuple(work.cancelled), tuple(work.not_cancelled), tuple(work.closed),
                          tuple(work.not_closed), tuple(work.frozen), tuple(work.fills))

    async def _again(self, attempt: int, deadline: float) -> bool:
        """Sleep before the next attempt; False when the deadline would pass first."""
        wait = self.retry.delay(attempt)
        if time.monotonic() + wait > deadline:
            return False
        await asyncio.sleep(wait)
        return True

    async def _cancel_all(self, venue: Venue, lv: LiveVenue, deadline: float, work: _Work) -> None:
        attempt, last, failed = 0, "", []
        tried: dict[str, str] = {}   # order id -> label: cancels sent whose outcome we did not hear
        while True:
            attempt += 1
            failed = []
            try:
                orders = await lv.open_orders()
                listed = {o.order_id for o in orders}
                for order_id in [i for i in tried if i not in listed]:   # the cancel went through after all
                    work.cancelled.append(f"{tried.pop(order_id)} (no longer open after a cancel whose reply was lost)")
                if not orders:
                    return
                for order in orders:
                    label = f"{venue.value} {order.order_id} {order.coin} {order.side.value} {order.amount:g}"
                    try:
                        await lv.cancel(order.coin, order.order_id, order.client_id)
                        tried.pop(order.order_id, None)
                        work.cancelled.append(label)
                    except VenueError as exc:
                        tried[order.order_id] = label
                        last = str(redact(exc))
                        failed.append(f"{venue.value} {order.order_id} {order.coin}")
            except VenueError as exc:
                last = str(redact(exc))
                failed = [f"{venue.value}: open orders could not be listed"]
            if not failed and attempt < 50:
                continue     # list again to confirm nothing is left
            if not await self._again(attempt, deadline):
                work.not_cancelled += [f"{what}: not cancelled ({last})" for what in failed]
                return

    async def _targets(self, exposures: Sequence[Exposure], deadline: float, work: _Work) -> list[Exposure]:
        """The exposures given, netted per venue and coin, with USDT-M taken from the venue itself (its
        positions are the truth)."""
        exposures = _netted(exposures)
        out = [e for e in exposures if e.venue is not Venue.BINANCE_USDM and e.qty]
        usdm = self.venues.get(Venue.BINANCE_USDM)
        given = [e for e in exposures if e.venue is Venue.BINANCE_USDM and e.qty]
        if usdm is None:
            work.not_closed += [f"binance_usdm {e.coin} {e.qty:+g}: no venue client to close it" for e in given]
            return out
        attempt = 0
        while True:
            attempt += 1
            try:
                positions = await usdm.positions()
                break
            except VenueError as exc:
                if not await self._again(attempt, deadline):
                    work.not_closed.append(f"binance_usdm: positions could not be read: {redact(exc)}")
                    return out + given
        return out + [Exposure(Venue.BINANCE_USDM, coin, qty) for coin, qty in sorted(positions.items())]

    async def _close(self, exposure: Exposure, deadline: float, work: _Work, stamp: int) -> None:
        lv = self.venues.get(exposure.venue)
        label = f"{exposure.venue.value} {exposure.coin} {exposure.qty:+g}"
        if lv is None:
            work.not_closed.append(f"{label}: no venue client to close it")
            return
        rules = lv.rules(exposure.coin)
        side = Side.SELL if exposure.qty > 0 else Side.BUY
        left = rules.round_qty(abs(exposure.qty))
        usdm = exposure.venue is Venue.BINANCE_USDM
        n, attempt, unknown, last, done, ref = 0, 0, False, "", 0.0, 0.0
        while left > 0:
            order_id = f"kill-{SHORT[exposure.venue]}{exposure.coin}-{stamp % 10**8}-{n}"  # fits 36 with the run tag
            attempt += 1
            try:
                if unknown:   # the last send's fate was not known: ask before sending anything new
                    found = await lv.lookup(exposure.coin, lv.client_id(order_id))
                    if found is not None and not found.final:
                        found = await lv.cancel(exposure.coin, found.order_id, found.client_id)
                    unknown = False
                    if found is not None:
                        if found.filled > 0:
                            work.fills.append(_execution(exposure, side, order_id, found, ref))
                        left, done, n = rules.round_qty(left - found.filled), done + found.filled, n + 1
                        continue
                bid, ask = await lv.best_prices(exposure.coin)
                ref = bid if side is Side.SELL else ask
                price = protective_price(rules, ref, side, self.band_bps)
                result = await lv.place(PlaceRequest(order_id, exposure.coin, side, left, price, reduce_only=usdm))
                left, done, n = rules.round_qty(left - result.filled), done + result.filled, n + 1
                if result.filled > 0:
                    work.fills.append(_execution(exposure, side, order_id, result, ref))
                    continue
                last = f"nothing filled within {self.band_bps:g} bps of the book"
            except (OrderRuleError, OrderRejected, VenueAuthError) as exc:   # retrying cannot help
                work.not_closed.append(f"{label}: {left:g} left, {redact(exc)}")
                return
            except VenueUnavailable as exc:
                unknown, last = True, str(redact(exc))
            except VenueError as exc:
                last = str(redact(exc))
            if not await self._again(attempt, deadline):
                work.not_closed.append(f"{label}: {left:g} left after {attempt} attempts ({last})")
                return
        work.closed.append(f"{label}: {side.value} {done:g}")
