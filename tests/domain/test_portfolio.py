"""Portfolio: guards, two-leg orders, leg-risk unwind/complete with its cost booked, round-trip PnL."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from domain.book import Book
from domain.fills import simulate_fill
from domain.ledger import Ledger
from domain.orders import Direction, OrderIntent, Purpose, Side
from domain.params import Market, RiskLimits
from domain.portfolio import Portfolio
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
