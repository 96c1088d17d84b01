"""Ledger conservation: every KRW, USDT and coin is accounted for, exactly, whatever the fills."""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ledger import DuplicateEvent, Ledger, dec
from domain.orders import Fill, Side

START = {("upbit", "KRW"): 100_000_000, ("upbit", "BTC"): 1, ("binance", "USDT"): 70_000,
         ("binance", "BTC"): 1, ("binance_usdm", "USDT"): 50_000}

fills = st.lists(st.tuples(
    st.sampled_from(["upbit", "binance", "binance_usdm"]), st.sampled_from([Side.BUY, Side.SELL]),
    st.floats(0, 2, allow_nan=False).map(lambda q: round(q, 5)),
    st.floats(1, 200_000_000, allow_nan=False), st.floats(0, 0.001)), max_size=40)


def make(i, venue, side, qty, price, fee_rate):
    return Fill(f"f{i}", f"o{i}", "p", venue, "BTC", side, qty, qty, price, qty * price * fee_rate, i, 0.0)


@settings(max_examples=200, deadline=None)
@given(fills)
def test_balances_fees_and_pnl_reconcile_exactly(seq):
    led = Ledger(START)
    applied = [make(i, *f) for i, f in enumerate(seq)]
    for f in applied:
        led.apply(f)
    # recompute every balance independently from the fill list
    for venue, quote in (("upbit", "KRW"), ("binance", "USDT")):
        spot = [f for f in applied if f.venue == venue and f.qty]
        cash = dec(START[(venue, quote)])
        coin = dec(START[(venue, "BTC")])
        for f in spot:
            sign = -1 if f.side is Side.BUY else 1
            cash += sign * dec(f.notional) - dec(f.fee)
            coin -= sign * dec(f.qty)
        assert led.balance(venue, quote) == cash
        assert led.balance(venue, "BTC") == coin
        assert led.fees.get((venue, quote), Decimal(0)) == sum((dec(f.fee) for f in spot), Decimal(0))
    # perp wallet: start + realised PnL - fees, and the position is the signed sum of the fills
    perp = [f for f in applied if f.venue == "binance_usdm" and f.qty]
    fees = sum((dec(f.fee) for f in perp), Decimal(0))
    realised = led.balance("binance_usdm", "USDT") - dec(START[("binance_usdm", "USDT")]) + fees
    pos = sum((dec(f.qty) if f.side is Side.BUY else -dec(f.qty) for f in perp), Decimal(0))
    held = led.perps.get("BTC")
    assert (held.qty if held else Decimal(0)) == pos
    if pos == 0:  # flat again: realised PnL is exactly what the position's cash flows were
        flows = sum(((-1 if f.side is Side.BUY else 1) * dec(f.price) * dec(f.qty) for f in perp), Decimal(0))
        assert realised == flows
    # a snapshot round trip keeps everything, exactly
    again = Ledger.from_dict(led.to_dict())
    assert again.balances == led.balances and again.fees == led.fees


def test_a_fill_id_is_applied_once():
    led = Ledger(START)
    f = make(1, "upbit", Side.BUY, 0.1, 159_515_000.0, 0.0005)
    led.apply(f)
    with pytest.raises(DuplicateEvent, match="f1"):
        led.apply(f)
    assert led.balance("upbit", "BTC") == Decimal("1.1")


def test_perp_short_then_cover_realises_the_price_difference():
    led = Ledger(START)
    led.apply(Fill("a", "o", "p", "binance_usdm", "BTC", Side.SELL, 0.5, 0.5, 100_000.0, 0.0, 1, 0.0))
    led.apply(Fill("b", "o", "p", "binance_usdm", "BTC", Side.BUY, 0.5, 0.5, 99_000.0, 0.0, 2, 0.0))
    assert led.balance("binance_usdm", "USDT") == Decimal(50_000 + 500)
    led.apply_funding("fund-1", "BTC", Decimal("1.25"))
    assert led.balance("binance_usdm", "USDT") == Decimal("50501.25")
