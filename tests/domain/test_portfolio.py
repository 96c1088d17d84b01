"""Portfolio: guards, two-leg orders, leg-risk unwind/complete with its cost booked, round-trip PnL."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from domain.book import Book
from domain.fills import simulate_fill
from domain.ledger import Ledger
from domain.orders import Direction, Order, OrderIntent, Purpose, Side
from domain.params import Market, RiskLimits
from domain.portfolio import ExternalBooking, Portfolio
from domain.premium import fx_fixed
from domain.venues import Venue, VenueRules

FX = fx_fixed(1383.7)
RULES = {Venue.UPBIT: VenueRules(Venue.UPBIT, 0.0005, 0, 1e-8, 5000, 30),
         Venue.BINANCE: VenueRules(Venue.BINANCE, 0.001, 0.01, 1e-5, 5, 30),
         Venue.BINANCE_USDM: VenueRules(Venue.BINANCE_USDM, 0.0005, 0.1, 0.001, 5, 30)}
START = {("upbit", "KRW"): 100_000_000, ("upbit", "BTC"): 0.5, ("binance", "USDT"): 75_000, ("binance", "BTC"): 0.5}


def portfolio(policy="unwind", limits=RiskLimits()):
    return Portfolio(Market(RULES, leg_risk_policy=policy), limits, Ledger(START))


def intent(qty=0.1, purpose=Purpose.ENTRY, pid="BTC-p1", reason="z=3"):
    return OrderIntent(f"{pid}-{purpose.value}", "BTC", 1_000, purpose, Direction.RICH, qty, 0.003, reason, pid)


def run_orders(pf, orders, upbit, binance):
    """Fill orders (and any follow-ups) against the given books, as the engine would."""
    outcomes, queue = [], list(orders)
    while queue:
        order = queue.pop(0)
        book = upbit if order.venue == "upbit" else binance
        fill = simulate_fill(order, book, RULES[Venue(order.venue)], f"{order.order_id}-f")
        out = pf.on_fill(fill, FX, upbit, binance)
        outcomes.append(out)
        queue.extend(out.orders)
    return outcomes


def test_entry_and_exit_close_a_round_trip_that_reconciles(upbit_books, binance_books):
    up, bn = upbit_books[4], binance_books[0]
    pf = portfolio()
    decision, orders = pf.submit(intent(), up, bn, FX)
    assert decision.allowed and {(o.venue, o.side) for o in orders} == {("upbit", Side.SELL), ("binance", Side.BUY)}
    opened = [o.opened for o in run_orders(pf, orders, up, bn) if o.opened]
    assert opened and opened[0].qty == pytest.approx(0.1)
    _, exits = pf.submit(intent(purpose=Purpose.EXIT, reason="take_profit"), up, bn, FX)
    closed = [o.closed for o in run_orders(pf, exits, up, bn) if o.closed]
    rt = closed[0]
    # Same books in and out: the round trip loses both spreads plus the four taker fees.
    assert rt.pnl_krw < 0 and rt.fees_krw == pytest.approx(0.1 * (159_502_585 + 159_515_000) * 0.0005
                                                           + 0.2 * 115_279.255 * 0.001 * 1383.7, rel=1e-3)
    assert pf.ledger.balance("upbit", "BTC") == Decimal("0.5")  # coin back where it was
    assert Decimal(rt.krw_delta) == pf.ledger.balance("upbit", "KRW") - Decimal(100_000_000)


def test_orphan_leg_is_unwound_and_its_cost_booked(upbit_books, binance_books):
    up, bn = upbit_books[4], binance_books[0]
    thin = replace(up, bids=up.bids[:2])  # Upbit shows only ~0.049 BTC of bids: the sell leg fills partly
    pf = portfolio("unwind")
    _, orders = pf.submit(intent(qty=0.1), thin, bn, FX)
    outcomes = run_orders(pf, orders, thin, bn)
    unwinds = [o for o in pf.orders.values() if o.purpose is Purpose.UNWIND]
    assert len(unwinds) == 1 and unwinds[0].venue == "binance" and unwinds[0].side is Side.SELL
    assert unwinds[0].qty == pytest.approx(0.1 - 0.04939447, abs=1e-5)
    opened = [o.opened for o in outcomes if o.opened][0]
    assert opened.qty == pytest.approx(0.04939447, abs=1e-5)   # the matched part stays open
    pos = pf.positions["BTC-p1"]
    assert pos.leg_risk_usdt > 0                                 # selling back the excess cost fees and spread
    assert abs(pos.held("upbit") + pos.held("binance")) < Decimal("0.00001")


def test_complete_policy_retries_the_missing_leg(upbit_books, binance_books):
    up, bn = upbit_books[4], binance_books[0]
    thin = replace(up, bids=up.bids[:2])
    pf = portfolio("complete")
    _, orders = pf.submit(intent(qty=0.1), thin, bn, FX)
    run_orders(pf, orders, thin, bn)
    purposes = [o.purpose for o in pf.orders.values()]
    assert Purpose.COMPLETE in purposes  # first the missing Upbit part is retried...
    assert Purpose.UNWIND in purposes    # ...and when the book still cannot take it, the excess is unwound


def test_guards_block_and_record_which_one(upbit_books, binance_books):
    up, bn = upbit_books[4], binance_books[0]
    pf = portfolio(limits=RiskLimits(max_open_positions=1))
    assert pf.submit(intent(pid="BTC-p1"), up, bn, FX)[0].allowed
    decision, orders = pf.submit(intent(pid="BTC-p2"), up, bn, FX)
    assert not decision.allowed and decision.guard == "max_open_positions" and decision.tier == "global"
    assert orders == [] and pf.risk.triggers["max_open_positions"] == 1


def test_balances_cap_the_size_and_an_unfundable_trade_is_refused(upbit_books, binance_books):
    up, bn = upbit_books[4], binance_books[0]
    no_imbalance_cap = RiskLimits(max_inventory_imbalance=1.0)  # isolate the balance cap
    pf = Portfolio(Market(RULES), no_imbalance_cap, Ledger({("upbit", "KRW"): 1e8, ("upbit", "BTC"): 0.02,
                                                            ("binance", "USDT"): 75_000}))
    decision, orders = pf.submit(intent(qty=0.1), up, bn, FX)
    assert decision.allowed and decision.qty == pytest.approx(0.02)   # only 0.02 BTC to sell on Upbit
    empty = Portfolio(Market(RULES), RiskLimits(), Ledger({("upbit", "KRW"): 1e8, ("binance", "USDT"): 75_000}))
    decision, orders = empty.submit(intent(qty=0.1), up, bn, FX)
    assert not decision.allowed and decision.guard == "insufficient_balance"


def test_replayed_intent_never_opens_twice(upbit_books, binance_books):
    up, bn = upbit_books[4], binance_books[0]
    pf = portfolio()
    _, first = pf.submit(intent(), up, bn, FX)
    decision, again = pf.submit(intent(), up, bn, FX)
    assert first and again == [] and decision is None


def test_inventory_imbalance_guard_blocks_draining_a_venue(upbit_books, binance_books):
    up, bn = upbit_books[4], binance_books[0]
    pf = Portfolio(Market(RULES), RiskLimits(max_inventory_imbalance=0.8),
                   Ledger({("upbit", "BTC"): 0.02, ("binance", "BTC"): 0.02, ("binance", "USDT"): 75_000}))
    decision, _ = pf.submit(intent(qty=0.1), up, bn, FX)
    assert not decision.allowed and decision.guard == "inventory_imbalance"


def kill_leg(venue, side, qty, book, n):
    """A kill switch's close order (not the portfolio's) and its fill against `book`."""
    ref = book.best_ask if side is Side.BUY else book.best_bid
    order = Order(f"kill-{venue}-{n}", "", venue, "BTC", side, qty, 2_000, 2_000, Purpose.EXIT, ref)
    return order, simulate_fill(order, book, RULES[Venue(venue)], f"{order.order_id}-f")


def opened(pf, up, bn, *pids, qty=0.05):
    for pid in pids:
        _, orders = pf.submit(intent(qty=qty, pid=pid), up, bn, FX)
        run_orders(pf, orders, up, bn)
        assert pf.positions[pid].state == "open"


def test_close_external_books_a_flatten_and_closes_as_kill_switch(upbit_books, binance_books):
    up, bn = upbit_books[4], binance_books[0]
    pf = portfolio()
    opened(pf, up, bn, "BTC-p1", qty=0.1)   # Upbit sold 0.1, Binance bought 0.1
    flatten = [kill_leg("upbit", Side.BUY, 0.1, up, 0), kill_leg("binance", Side.SELL, 0.1, bn, 0)]
    booking = pf.close_external(flatten, 2_000, FX)
    (rt,) = booking.closed
    assert booking.left_open == () and booking.unattributed == ()
    assert rt.exit_reason == "kill_switch" and pf.round_trips == [rt] and pf.positions["BTC-p1"].state == "closed"
    led, pos = pf.ledger, pf.positions["BTC-p1"]
    # coin back where it was, and the round trip's cash is the ledger's, to the unit
    assert led.balance("upbit", "BTC") == Decimal("0.5") and led.balance("binance", "BTC") == Decimal("0.5")
    assert Decimal(rt.krw_delta) == led.balance("upbit", "KRW") - Decimal(100_000_000)
    assert Decimal(rt.usdt_delta) == led.balance("binance", "USDT") - Decimal(75_000)
    assert pos.fees_krw == led.fees[("upbit", "KRW")] and pos.fees_usdt == led.fees[("binance", "USDT")]
    assert rt.pnl_krw == pytest.approx(float(rt.krw_delta) + float(rt.usdt_delta) * FX.mid, abs=1e-6)
    assert rt.pnl_krw < 0 and rt.exit_premium != 0.0, "same books in and out: spreads and fees lost"
    assert pf.open_positions() == [] and pf.exposure().total == 0
    again = pf.close_external(flatten, 2_000, FX)   # the same executions reported twice: booked once
    assert again == ExternalBooking() and pf.round_trips == [rt]


def test_close_external_partial_flatten_leaves_the_rest_open_and_visible(upbit_books, binance_books):
    up, bn = upbit_books[4], binance_books[0]
    pf = portfolio()
    opened(pf, up, bn, "BTC-p1", "BTC-p2")          # two positions of 0.05 each
    krw0, usdt0 = pf.ledger.balance("upbit", "KRW"), pf.ledger.balance("binance", "USDT")
    before = {pid: (p.krw_delta, p.usdt_delta) for pid, p in pf.positions.items()}
    flatten = [kill_leg("upbit", Side.BUY, 0.08, up, 0),        # 0.02 of p2's Upbit short is never bought back
               kill_leg("binance", Side.SELL, 0.11, bn, 0)]     # 0.01 more than the positions held
    booking = pf.close_external(flatten, 2_000, FX)
    (rt,) = booking.closed
    assert rt.position_id == "BTC-p1" and rt.exit_reason == "kill_switch", "oldest position first"
    p2 = pf.positions["BTC-p2"]
    assert booking.left_open == ("BTC-p2",) and p2.state == "stuck" and p2 in pf.open_positions()
    assert p2.held("upbit") == Decimal("-0.02") and p2.held("binance") == 0
    assert booking.unattributed == (("binance", "BTC", Decimal("-0.01")),)
    # the ledger took every fill whole; the positions' shares add up to it exactly
    led = pf.ledger
    assert led.balance("upbit", "BTC") == Decimal("0.48") and led.balance("binance", "BTC") == Decimal("0.49")
    krw_kill = led.balance("upbit", "KRW") - krw0
    usdt_kill = led.balance("binance", "USDT") - usdt0
    p1 = pf.positions["BTC-p1"]
    assert (p1.krw_delta - before["BTC-p1"][0]) + (p2.krw_delta - before["BTC-p2"][0]) == krw_kill
    attributed_usdt = (p1.usdt_delta - before["BTC-p1"][1]) + (p2.usdt_delta - before["BTC-p2"][1])
    assert 0 < attributed_usdt < usdt_kill, "the unattributed 0.01 sold stays in the ledger only"
    assert usdt_kill * Decimal("0.1") / Decimal("0.11") == pytest.approx(attributed_usdt, abs=Decimal("1e-7"))
    assert p1.fees_krw + p2.fees_krw == led.fees[("upbit", "KRW")]
