"""A live run's Redis snapshot (`arb:{run_id}:coordinator:main`): what the LiveCoordinator writes, and how a
resumed run reads it back, checks it and restores its desk from it.

    doc = export_run(desk, profile.name, started_ms, resumes, views)    # the coordinator, after every change
    snap = read_run_snapshot(redis_url, run_id, profile)                # ResumeRefused names key and field
    known = snap.known_state()                # what the preflight must expect on the venues (ours, not foreign)
    summary = restore_desk(desk, snap)        # positions, ledger, decisions, round trips, PnL, orders sent
    awaiting = mark_awaiting(desk)            # orders the crash hid the fate of: reconcile settles them

Nothing here talks to a venue. The coordinator settles the awaiting orders by client id (LiveDesk.reconcile)
before it takes a new intent.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from redis.exceptions import RedisError

from domain.orders import Purpose
from domain.state import StateError, export_engine, rebuild, record, restore_engine
from domain.strategy import PositionView
from domain.symbols import FX_SYMBOL
from domain.venues import Venue
from live.cli import KnownState
from live.venue import ccxt_symbol, client_order_id
from paper.desk import News, PaperDesk
from snapshots.keys import key
from snapshots.redis_store import RedisSnapshotStore
from snapshots.store import SnapshotError

FIELDS = ("profile", "started_ms", "resumes", "desk", "exposure", "sent", "unresolved", "fee_shift", "views")


class ResumeRefused(RuntimeError):
    """A live run cannot be resumed from what its snapshot holds; the message names key and field."""


def export_run(desk: Any, profile_name: str, started_ms: int, resumes: int, views: dict[str, PositionView]) -> dict:
    """The snapshot document of a live run (a LiveDesk): its desk (positions, orders, ledger, history), the
    coin each open position holds per venue (what `main.py kill --run` trades back), every order sent with
    its client id, the orders whose fate is unknown, the fees the venues took in coin (fee_shift), and the
    position views the strategy shards were given. Never a key: the desk holds none."""
    return {"profile": profile_name, "started_ms": int(started_ms), "resumes": int(resumes),
            "desk": export_engine(desk, all_books=False),
            "exposure": [list(e) for e in desk.open_exposure()],
            "sent": dict(desk.sent), "unresolved": sorted(desk.unresolved),
            "fee_shift": [[v, a, str(x)] for (v, a), x in sorted(desk.fee_shift.items())],
            "views": {s: record(v) for s, v in views.items()}}


@dataclass(frozen=True)
class RunSnapshot:
    """One checked snapshot of a live run (read_run_snapshot), with the portfolio it restores to."""

    run_id: str
    key: str
    version: int
    payload: dict
    probe: PaperDesk          # the desk document restored once, so the snapshot is known to load

    def where(self, field: str) -> str:
        return f"snapshot {self.key} version {self.version}: field {field!r}"

    @property
    def started_ms(self) -> int:
        return int(self.payload["started_ms"])

    @property
    def resumes(self) -> int:
        """How many times the run was resumed before this snapshot was written."""
        return int(self.payload["resumes"])

    def known_state(self) -> KnownState:
        """Our client id of every order the run ever made, per venue (an open one is expected, not foreign),
        and the USDT-M positions its ledger holds."""
        ids: dict[Venue, set[str]] = {}
        for order in self.probe.portfolio.orders.values():     # the sent ones too: same run tag, same ids
            ids.setdefault(Venue(order.venue), set()).add(client_order_id(self.run_id, order.order_id))
        positions = {ccxt_symbol(Venue.BINANCE_USDM, coin): float(p.qty)
                     for coin, p in self.probe.ledger.perps.items() if p.qty != 0}
        return KnownState({v: frozenset(s) for v, s in ids.items()}, positions)

    def views(self) -> dict[str, PositionView]:
        """The position views the crashed run's strategy shards held (fresh shards are given them)."""
        try:
            return {s: rebuild(PositionView, v, f"views[{s}]") for s, v in self.payload["views"].items()}
        except StateError as exc:
            raise ResumeRefused(f"resume {self.run_id}: {self.where('views')}: {exc}") from None


def read_run_snapshot(redis_url: str, run_id: str, profile: Any) -> RunSnapshot:
    """The newest intact snapshot of live run `run_id`, checked against `profile`; ResumeRefused otherwise."""
    name = key(run_id, "coordinator", "main")
    store = RedisSnapshotStore(redis_url)
    try:
        snap = store.get(name)
    except (SnapshotError, RedisError) as exc:
        raise ResumeRefused(f"resume {run_id}: cannot read {name} in {redis_url}: {exc}") from None
    finally:
        store.close()
    if snap is None:
        raise ResumeRefused(f"resume {run_id}: no snapshot at {name} in {redis_url}: nothing to resume "
                            f"(runbooks/crash-recovery.md: kill it from the venues, start a new run)")
    payload = snap.payload
    at = f"snapshot {name} version {snap.version}"
    missing = [f for f in FIELDS if f not in payload]
    if missing:
        raise ResumeRefused(f"resume {run_id}: {at}: field {missing[0]!r} missing (not a live run's snapshot, "
                            f"or one written before live runs could resume)")
    if payload["profile"] != profile.name:
        raise ResumeRefused(f"resume {run_id}: {at}: field 'profile' is {payload['profile']!r}, "
                            f"but this start runs profile {profile.name!r}")
    for field, kind in (("started_ms", int), ("resumes", int), ("sent", dict), ("unresolved", list),
                        ("fee_shift", list), ("views", dict)):
        if not isinstance(payload[field], kind) or isinstance(payload[field], bool):
            raise ResumeRefused(f"resume {run_id}: {at}: field {field!r} is {type(payload[field]).__name__}, "
                                f"expected {kind.__name__}")
    params = profile.to_domain()
    probe = PaperDesk([s.base for s in profile.symbols() or ()], params.strategy, params.risk, params.market,
                      params.fx, {})
    try:
        restore_engine(probe, payload["desk"], news_type=News)
    except StateError as exc:
        raise ResumeRefused(f"resume {run_id}: {at}: field 'desk' cannot be restored: {exc}") from None
    result = RunSnapshot(run_id, name, snap.version, payload, probe)
    for field in ("sent", "unresolved"):
        unknown = [oid for oid in payload[field] if not isinstance(oid, str) or oid not in probe.portfolio.orders]
        if unknown:
            raise ResumeRefused(f"resume {run_id}: {result.where(field)}: orders {unknown[:5]} are not in the "
                                f"desk's portfolio.orders")
    _fee_shift(result)
    result.views()
    return result


def _fee_shift(snap: RunSnapshot) -> dict[tuple[str, str], Decimal]:
    try:
        return {(str(v), str(a)): Decimal(x) for v, a, x in snap.payload["fee_shift"]}
    except (TypeError, ValueError, InvalidOperation) as exc:
        raise ResumeRefused(f"resume {snap.run_id}: {snap.where('fee_shift')}: malformed ({exc})") from None


def restore_desk(desk: Any, snap: RunSnapshot) -> dict:
    """Load the snapshot into a freshly opened LiveDesk (its ledger read from the venues is replaced by the
    run's); returns what was restored, for the KPI file and the operator."""
    restore_engine(desk, snap.payload["desk"], news_type=News)
    desk.sent = dict(snap.payload["sent"])
    desk.unresolved = {oid: desk.portfolio.orders[oid] for oid in snap.payload["unresolved"]}
    desk.fee_shift = _fee_shift(snap)
    desk.history_seen()
    pf = desk.portfolio
    held = [{"position_id": p.position_id, "symbol": p.symbol, "state": p.state, "qty": p.qty,
             "coin": {v: float(q) for v, q in p.coin.items()}}
            for p in pf.positions.values() if p.state in ("opening", "open", "closing", "stuck")]
    desk.resumed = {"snapshot_version": snap.version, "resumes": snap.resumes + 1, "open_positions": held,
                    "round_trips": len(pf.round_trips), "pnl_krw": sum(rt.pnl_krw for rt in pf.round_trips),
                    "orders_sent": len(desk.sent), "frozen": pf.risk.frozen or None}
    return desk.resumed


def books_needed(desk: Any, profile: Any) -> set[tuple[str, str]]:
    """The books settling the unresolved orders needs, fresh (a fill can lead to an unwind or a completion,
    priced on them): both venues' books of their coins, and the USDT/KRW book when the FX comes from it."""
    coins = {o.symbol for o in desk.unresolved.values()}
    need = {(v, c) for c in coins for v in (Venue.UPBIT.value, desk.bn_venue)}
    if profile.fx.source == "book":
        need.add((Venue.UPBIT.value, FX_SYMBOL))
    return need


def describe(report: Any) -> str:
    """A reconcile report's disagreements in one line (ReconcileReport)."""
    parts = [f"unresolved orders {list(report.unresolved)}" if report.unresolved else "",
             f"foreign open orders {list(report.foreign_orders)}" if report.foreign_orders else "",
             "drifts " + "; ".join(f"{d.venue} {d.what}: venue {d.venue_amount:g}, ours {d.ours:g}"
                                   for d in report.drifts) if report.drifts else "",
             f"errors {list(report.errors)}" if report.errors else ""]
    return ", ".join(p for p in parts if p) or "nothing"


def mark_awaiting(desk: Any) -> list[str]:
    """Orders the desk never booked a final word for: the unresolved ones, and every order an open position
    still waits on (sent, or about to be, when the process died). All go to `unresolved`, which
    LiveDesk.reconcile settles by client id: a fill is booked, an order the venue never saw is a zero fill."""
    for pos in desk.portfolio.positions.values():
        for oid, order in pos.open_orders.items():
            desk.unresolved.setdefault(oid, order)
    return sorted(desk.unresolved)


def resumed_intent(intent: Any, resumes: int) -> Any:
    """A resumed run's strategy shards start afresh, so their position ids (`<coin>-p<n>`) start again at 1:
    each entry of resume N is named `<id>.r<N>`, which neither the crashed lives nor the shards ever use.
    Exits carry the id the desk gave the position (through the shards' position view) and pass unchanged."""
    if resumes < 1 or intent.purpose is not Purpose.ENTRY:
        return intent
    return replace(intent, intent_id=f"{intent.intent_id}.r{resumes}", position_id=f"{intent.position_id}.r{resumes}")
