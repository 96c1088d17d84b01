"""LiveDesk against the simulator: every outcome the venue reports reaches the ledger exactly once, fees
included. An order leaves `unresolved` only once its outcome is booked; a fee recovered through a cancel is
booked like any other."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from domain.venues import Venue
from live.desk import STUCK_RECONCILES, LiveDesk
from live.resume import RunSnapshot, export_run, restore_desk
from tests.live.test_desk import desk_on, intent, new_orders, params, run
from tests.sim.support import running_sim


def test_reconcile_keeps_an_order_it_cannot_book_yet_and_alerts_when_it_stays(data: Path) -> None:
    """A resumed desk reconciles before any book of the coin came: the order the crash left unresolved
    stays unresolved (never dropped), a P1 says so after STUCK_RECONCILES tries, and once the books come
    the next reconcile books the fill the venue made."""
    async def scenario() -> None:
        async with running_sim(data) as sim, desk_on(sim) as crashed:
            await sim.fault({"kind": "http_error", "venue": "binance", "status": 503, "fraction": 1.0,
                             "after": True})
            await crashed.submit(intent(crashed))
            (lost,) = crashed.unresolved               # the venue filled it; the reply never came
            await sim.fault({"kind": "clear", "venue": "binance"})
            doc = export_run(crashed, "test", 0, 0, {})
            desk = await LiveDesk.open(["BTC"], params(), crashed.venues)
            restore_desk(desk, RunSnapshot("crashed-run", "test-key", 1, doc, probe=crashed))
            for attempt in range(1, STUCK_RECONCILES + 1):
                report = await desk.reconcile()
                assert report.booked == () and report.unresolved == (lost,), f"reconcile {attempt}"
                assert any(f"order {lost} not booked: no upbit, binance book of BTC yet" in e
                           for e in report.errors), report.errors
                assert desk.unresolved_misses[lost] == attempt
            stuck = [a for a in desk.live_alerts if a.kind == "order_stuck"]
            assert [(a.severity, a.symbol) for a in stuck] == [("P1", "BTC")], "alerted once, at the threshold"
            assert f"order {lost} on binance unresolved after {STUCK_RECONCILES} reconciles" in stuck[0].message
            desk.on_books(list(crashed.books.values()))
            report = await desk.reconcile()
            assert report.booked == (lost,) and report.ok, report
            assert desk.unresolved == {} and desk.unresolved_misses == {}
            assert desk.portfolio.positions["BTC-p1"].state == "open"
            assert len([e for e in new_orders(sim) if e["venue"] == "binance"]) == 1, "placed once, never resent"
    run(scenario())


def test_a_fill_recovered_by_reconciles_cancel_is_booked_with_its_fee(data: Path) -> None:
    """The venue still works the unresolved Binance buy, partly filled: reconcile cancels the rest and books
    the 0.004 BTC it bought with the fee Binance kept in BTC, so the ledger agrees with the venue."""
    async def scenario() -> None:
        async with running_sim(data) as sim, desk_on(sim) as desk:
            await sim.fault({"kind": "http_error", "venue": "binance", "status": 503, "fraction": 1.0})
            await desk.submit(intent(desk))
            (lost,) = desk.unresolved
            await sim.fault({"kind": "clear", "venue": "binance"})
            assert [e["venue"] for e in new_orders(sim)] == ["upbit"], "every Binance send was refused"
            # Stand-in for a send that reached the venue after all and is still worked: the same client id,
            # resting at the best bid, which a seller then meets for 0.004 BTC.
            held = desk.books[("binance", "BTC")]
            bid = held.bids[0][0]
            lv = desk.venues[Venue.BINANCE]
            await lv.exchange.create_order("BTC/USDT", "limit", "buy", 0.01, bid, {"clientOrderId": desk.sent[lost]})
            sim.publish(replace(held, ts_ms=held.ts_ms + 1, bids=held.bids[1:], asks=((bid, 0.004),) + held.asks))
            report = await desk.reconcile()
            assert report.booked == (lost,) and report.ok, report
            (fill,) = [f for f in desk.trace.fills if f.order_id == lost]
            assert fill.qty == pytest.approx(0.004) and fill.fee == pytest.approx(0.004 * bid * 0.001, rel=1e-6)
            assert desk.fee_shift[("binance", "BTC")] == Decimal("-0.00000400"), "Binance kept the fee in BTC"
    run(scenario())
