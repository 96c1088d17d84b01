"""LiveDesk against the simulator: every outcome the venue reports reaches the ledger exactly once, fees
included. An order leaves `unresolved` only once its outcome is booked; a fee recovered through a cancel is
booked like any other; a fee paid in a third asset (Binance's BNB discount) is a debit of that asset."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from domain.ledger import Ledger
from domain.orders import Purpose
from domain.venues import Venue
from live.desk import STUCK_RECONCILES, LiveDesk
from live.resume import RunSnapshot, export_run, restore_desk
from sim.matching import FeeInAsset
from tests.live.test_desk import desk_on, intent, new_orders, params, run
from tests.sim.support import BALANCES, KEY, running_sim

BNB_USDT = 850.0   # the price the simulator converts a BNB-paid fee at


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


def test_fees_paid_in_bnb_are_booked_as_a_debit_of_bnb_on_binance(data: Path) -> None:
    async def scenario() -> None:
        balances = {**BALANCES, ("binance", KEY): {**BALANCES[("binance", KEY)], "BNB": 2.0}}
        async with running_sim(data, balances=balances, fee_in={"binance": FeeInAsset("BNB", BNB_USDT)}) as sim, \
                desk_on(sim) as desk:
            await desk.submit(intent(desk))
            await desk.submit(intent(desk, Purpose.EXIT))
            (rt,) = desk.portfolio.round_trips
            paid = [e["fee"] for e in sim.journal("order") if e["venue"] == "binance" and e["event"] == "filled"]
            assert len(paid) == 2 and all(p > 0 for p in paid)
            assert float(desk.ledger.fees[("binance", "BNB")]) == pytest.approx(sum(paid), abs=1e-8)
            assert float(desk.ledger.balance("binance", "BNB")) == pytest.approx(2.0 - sum(paid), abs=1e-8)
            assert ("binance", "BTC") not in desk.fee_shift, "no fee was taken in the coin"
            report = await desk.reconcile()
            assert report.ok, report       # BNB included: the ledger is the venue's balance to the unit
            told = [a for a in desk.live_alerts if a.kind == "fee_other"]
            assert [a.severity for a in told] == ["P3"], "said once that PnL does not value BNB fees"
    run(scenario())


def test_a_fee_in_an_asset_the_desk_did_not_expect_is_booked_and_alerted(data: Path) -> None:
    """The venue takes its fee in USDC, which the desk does not read at open: the fee is still booked as a
    USDC debit, a P2 says the ledger did not open with that balance, and reconcile shows the difference."""
    async def scenario() -> None:
        balances = {**BALANCES, ("binance", KEY): {**BALANCES[("binance", KEY)], "USDC": 100.0}}
        async with running_sim(data, balances=balances, fee_in={"binance": FeeInAsset("USDC", 1.0)}) as sim, \
                desk_on(sim) as desk:
            await desk.submit(intent(desk))
            (paid,) = [e["fee"] for e in sim.journal("order") if e["venue"] == "binance" and e["event"] == "filled"]
            assert float(desk.ledger.balance("binance", "USDC")) == pytest.approx(-paid, abs=1e-8)
            assert [a.severity for a in desk.live_alerts if a.kind == "fee_asset"] == ["P2"]
            report = await desk.reconcile()
            assert [(d.venue, d.what) for d in report.drifts] == [("binance", "USDC")]
            assert report.drifts[0].delta == pytest.approx(100.0), "the opening balance the ledger never read"
    run(scenario())


@pytest.mark.parametrize("amount", [-0.001, float("nan")])
def test_the_ledger_refuses_a_bad_fee_naming_it(amount: float) -> None:
    ledger = Ledger({("binance", "BNB"): 1.0})
    with pytest.raises(ValueError, match=r"fee BTC-p1-entry-binance-2-f:BNB on binance: amount .* must be"):
        ledger.apply_fee("BTC-p1-entry-binance-2-f:BNB", "binance", "BNB", amount)
    assert ledger.balance("binance", "BNB") == Decimal("1.00000000") and not ledger.fees
