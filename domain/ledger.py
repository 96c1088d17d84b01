"""Balances per venue and asset, fees paid and perpetual positions, changed only by applying fills.

Amounts are exact Decimals at 1e-8 (the finest precision of either venue), so balances, fees and
PnL reconcile to the unit. A fill or funding id already applied is refused, never counted twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from domain.orders import Fill, Side
from domain.venues import Venue

UNIT = Decimal("1e-8")
ZERO = Decimal(0)


def dec(x: float | int | str | Decimal) -> Decimal:
    """A float's shortest repr as an exact Decimal, quantized to the ledger unit."""
    return Decimal(repr(x) if isinstance(x, float) else str(x)).quantize(UNIT, ROUND_HALF_EVEN)


class DuplicateEvent(ValueError):
    """A fill or funding id that the ledger has already applied."""


@dataclass(frozen=True, slots=True)
class Effect:
    """What one fill did to the balances: {(venue, asset): delta} and the fee it paid."""

    deltas: tuple[tuple[tuple[str, str], Decimal], ...]
    fee: Decimal
    fee_asset: tuple[str, str]
    realized: Decimal = ZERO  # perp fills: PnL realised by reducing the position (USDT)


@dataclass(slots=True)
class PerpPosition:
    qty: Decimal = ZERO   # signed: short < 0
    cost: Decimal = ZERO  # signed cost basis: sum of qty * price still open

    @property
    def avg(self) -> Decimal:
        return self.cost / self.qty if self.qty else ZERO


class Ledger:
    """Exact account state of every venue; `apply` is the only way a fill changes it."""

    def __init__(self, balances: dict[tuple[str, str], Decimal | float]):
        self.balances: dict[tuple[str, str], Decimal] = {k: dec(v) for k, v in balances.items()}
        self.initial: dict[tuple[str, str], Decimal] = dict(self.balances)
        self.fees: dict[tuple[str, str], Decimal] = {}
        self.perps: dict[str, PerpPosition] = {}
        self.funding: Decimal = ZERO
        self._seen: set[str] = set()

    def balance(self, venue: str, asset: str) -> Decimal:
        return self.balances.get((venue, asset), ZERO)

    def _add(self, key: tuple[str, str], delta: Decimal) -> None:
        self.balances[key] = self.balances.get(key, ZERO) + delta

    def _claim(self, event_id: str) -> None:
        if event_id in self._seen:
            raise DuplicateEvent(f"event {event_id} already applied to the ledger")
        self._seen.add(event_id)

    def seen(self, event_id: str) -> bool:
        return event_id in self._seen

    def apply(self, fill: Fill) -> Effect:
        """Book one fill. Spot: coin against quote. Perp: position and realised PnL in USDT margin."""
        self._claim(fill.fill_id)
        venue = fill.venue
        quote = Venue(venue).quote
        qty, notional, fee = dec(fill.qty), dec(fill.notional), dec(fill.fee)
        cash = (venue, quote)
        if qty == 0:
            return Effect((), ZERO, cash)
        self.fees[cash] = self.fees.get(cash, ZERO) + fee
        if venue == Venue.BINANCE_USDM.value:
            realized = self._apply_perp(fill.symbol, qty if fill.side is Side.BUY else -qty, dec(fill.price))
            delta = realized - fee
            self._add(cash, delta)
            return Effect(((cash, delta),), fee, cash, realized)
        coin = (venue, fill.symbol)
        if fill.side is Side.BUY:
            deltas = ((cash, -notional - fee), (coin, qty))
        else:
            deltas = ((cash, notional - fee), (coin, -qty))
        for key, delta in deltas:
            self._add(key, delta)
        return Effect(deltas, fee, cash)

    def _apply_perp(self, coin: str, signed_qty: Decimal, price: Decimal) -> Decimal:
        """Move the position by signed_qty at price; return the PnL realised by any reduction.

        The position keeps its exact cost basis; a full close releases all of it, so the PnL of
        a position that is flat again equals its cash flows to the unit.
        """
        pos = self.perps.setdefault(coin, PerpPosition())
        realized = ZERO
        if pos.qty and (pos.qty > 0) != (signed_qty > 0):  # reducing (or flipping)
            closing = min(abs(signed_qty), abs(pos.qty))
            sign = 1 if pos.qty > 0 else -1
            if closing == abs(pos.qty):
                released = pos.cost
            else:
                released = (pos.cost * closing / abs(pos.qty)).quantize(UNIT, ROUND_HALF_EVEN)
            realized = sign * closing * price - released
            pos.cost -= released
            pos.qty -= sign * closing
            signed_qty += sign * closing
        if signed_qty:
            pos.qty += signed_qty
            pos.cost += signed_qty * price
        return realized

    def apply_fee(self, fee_id: str, venue: str, asset: str, amount: float | Decimal) -> None:
        """Book a fee a venue took in an asset that is not the fill's quote (Binance's BNB discount): a
        debit of that asset on that venue, counted in `fees` under it. The fill's own `fee` leaves it out."""
        fee = Decimal(repr(amount) if isinstance(amount, float) else str(amount))
        if not (fee.is_finite() and fee >= 0):
            raise ValueError(f"fee {fee_id} on {venue}: amount {amount!r} {asset} must be a finite number >= 0")
        self._claim(fee_id)
        fee = dec(fee)
        self._add((venue, asset), -fee)
        self.fees[(venue, asset)] = self.fees.get((venue, asset), ZERO) + fee

    def apply_funding(self, funding_id: str, coin: str, amount_usdt: Decimal) -> None:
        """Book a funding payment on the perp wallet (positive = received)."""
        self._claim(funding_id)
        amount = dec(amount_usdt)
        self._add((Venue.BINANCE_USDM.value, "USDT"), amount)
        self.funding += amount

    def to_dict(self) -> dict:
        """Plain, exact (strings) state for snapshots.

        Insertion order is kept, not sorted, and every map is a list (a snapshot store sorts object
        keys): valuations sum floats over these maps in order, so a restored ledger must iterate
        exactly like the one it was taken from.
        """
        return {
            "balances": [[v, a, str(x)] for (v, a), x in self.balances.items()],
            "initial": [[v, a, str(x)] for (v, a), x in self.initial.items()],
            "fees": [[v, a, str(x)] for (v, a), x in self.fees.items()],
            "perps": [[c, str(p.qty), str(p.cost)] for c, p in self.perps.items()],
            "funding": str(self.funding),
            "seen": sorted(self._seen),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Ledger":
        led = cls({})
        led.balances = {(v, a): Decimal(x) for v, a, x in d["balances"]}
        led.initial = {(v, a): Decimal(x) for v, a, x in d["initial"]}
        led.fees = {(v, a): Decimal(x) for v, a, x in d["fees"]}
        led.perps = {c: PerpPosition(Decimal(q), Decimal(p)) for c, q, p in d["perps"]}
        led.funding = Decimal(d["funding"])
        led._seen = set(d["seen"])
        return led
