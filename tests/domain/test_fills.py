"""Fill model: depth walk, lot rounding, minimum notional, fees, limit prices, partial fills."""
from __future__ import annotations

import pytest

from domain.book import Book
from domain.fills import simulate_fill
from domain.orders import Order, Purpose, Side
from domain.venues import Venue, VenueRules, upbit_krw_tick

UPBIT = VenueRules(Venue.UPBIT, 0.0005, 0, 1e-8, 5000, 30)
BINANCE = VenueRules(Venue.BINANCE, 0.001, 0.01, 1e-5, 5, 30)


def order(side, qty, venue="binance", limit=None, ref=115279.26):
    return Order("o1", "p1", venue, "BTC", side, qty, 0, 30, Purpose.ENTRY, ref, limit)


def test_buy_walks_asks_with_taker_fee(binance_books):
    book = binance_books[0]
    f = simulate_fill(order(Side.BUY, 0.5), book, BINANCE, "f1")
    assert f.qty == pytest.approx(0.5) and f.price == pytest.approx(115279.26)
    assert f.fee == pytest.approx(0.5 * 115279.26 * 0.001)
    assert f.ts_ms == 30 and f.slippage_bps == pytest.approx(0.0)


def test_quantity_rounds_down_to_the_lot(binance_books):
    f = simulate_fill(order(Side.BUY, 0.123456789), binance_books[0], BINANCE, "f1")
    assert f.qty == pytest.approx(0.12345)


def test_partial_fill_when_depth_runs_out_and_slippage_is_adverse(upbit_books):
    book = upbit_books[4]
    depth = sum(q for _, q in book.bids)
    f = simulate_fill(order(Side.SELL, depth + 1, "upbit", ref=book.best_bid), book, UPBIT, "f1")
    assert f.partial and f.qty == pytest.approx(depth, abs=1e-8)
    assert f.price < book.best_bid and f.slippage_bps > 0


def test_below_min_notional_is_a_failed_fill(binance_books):
    f = simulate_fill(order(Side.BUY, 0.00004), binance_books[0], BINANCE, "f1")  # ~4.6 USDT < 5
    assert f.qty == 0 and f.fee == 0


def test_limit_ioc_never_walks_past_its_price(upbit_books):
    book = upbit_books[4]  # asks 159,515,000 x 0.1875 then 159,525,000
    f = simulate_fill(order(Side.BUY, 0.5, "upbit", limit=159_515_000, ref=book.best_ask), book, UPBIT, "f1")
    assert f.qty == pytest.approx(0.18749762) and f.price == pytest.approx(159_515_000)


def test_upbit_tick_table_and_price_rounding():
    assert upbit_krw_tick(159_508_000) == 1000
    assert upbit_krw_tick(4_612_000) == 1000
    assert upbit_krw_tick(41.4) == 0.1
    assert UPBIT.round_price(159_508_400, "buy") == 159_508_000
    assert UPBIT.round_price(159_508_400, "sell") == 159_509_000
    assert BINANCE.round_price(115279.257, "buy") == pytest.approx(115279.25)


def test_rules_refuse_impossible_values():
    with pytest.raises(ValueError, match="taker_fee"):
        VenueRules(Venue.UPBIT, -0.1, 0, 1e-8, 5000)
    with pytest.raises(ValueError, match="lot_size"):
        VenueRules(Venue.UPBIT, 0.0005, 0, 0, 5000)


def test_book_validation_names_the_problem():
    bad = Book("upbit", "BTC", 1, ((100.0, 1.0),), ((99.0, 1.0),))
    with pytest.raises(ValueError, match="crossed"):
        bad.validate()
