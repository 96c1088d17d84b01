"""VWAP depth walks and executable premium on the real 2025-08-24 books, worked out by hand."""
from __future__ import annotations

import pytest

from domain.book import walk
from domain.orders import Direction
from domain.premium import (NoFxRate, buy_upbit, edge, entry_quote, exit_quote, fx_fixed, fx_from_book,
                            sell_upbit)

FX = fx_fixed(1383.7)


def test_walk_sells_into_upbit_bids_level_by_level(upbit_books):
    book = upbit_books[4]  # 06:05:19.682
    w = walk(book.bids, 0.1)
    # bids: 159,508,000 x 0.01232851; 159,507,000 x 0.03706596; 159,500,000 x 0.00080693;
    # then 159,498,000 for the rest: 0.1 - 0.01232851 - 0.03706596 - 0.00080693 = 0.0497986
    notional = (159_508_000 * 0.01232851 + 159_507_000 * 0.03706596 + 159_500_000 * 0.00080693
                + 159_498_000 * 0.0497986)
    assert w.qty == pytest.approx(0.1)
    assert w.notional == pytest.approx(notional, rel=1e-12)
    assert w.vwap == pytest.approx(159_502_584.926, abs=0.01)
    assert w.levels == 4 and w.worst_price == 159_498_000


def test_walk_runs_out_of_depth_and_fills_partially(upbit_books):
    book = upbit_books[4]
    total = sum(q for _, q in book.asks)
    w = walk(book.asks, total + 5)
    assert w.qty == pytest.approx(total)
    assert w.levels == len(book.asks)


def test_premium_upbit_rich_direction_by_hand(upbit_books, binance_books):
    up, bn = upbit_books[4], binance_books[0]
    q = sell_upbit(up, bn, FX, 0.1)
    # Binance best ask 115,279.26 holds 8.61 BTC, so its VWAP for 0.1 is the best ask.
    expected = 159_502_584.926 / (115_279.26 * 1383.7) - 1
    assert q.premium == pytest.approx(expected, abs=1e-9)
    assert q.premium * 1e4 == pytest.approx(-0.5847, abs=1e-3)


def test_premium_upbit_cheap_direction_by_hand(upbit_books, binance_books):
    up, bn = upbit_books[4], binance_books[0]
    q = buy_upbit(up, bn, FX, 0.5)
    # Upbit asks: 159,515,000 x 0.18749762; 159,525,000 x 0.36132023 (enough for the rest, 0.31250238)
    up_vwap = (159_515_000 * 0.18749762 + 159_525_000 * 0.31250238) / 0.5
    expected = up_vwap / (115_279.25 * 1383.7) - 1
    assert q.upbit.vwap == pytest.approx(up_vwap, rel=1e-12)
    assert q.premium == pytest.approx(expected, abs=1e-9)


def test_bigger_size_gives_a_worse_premium(upbit_books, binance_books):
    up, bn = upbit_books[4], binance_books[0]
    sells = [sell_upbit(up, bn, FX, q).premium for q in (0.01, 0.1, 0.5, 1.0)]
    buys = [buy_upbit(up, bn, FX, q).premium for q in (0.01, 0.1, 0.5, 1.0)]
    assert sells == sorted(sells, reverse=True)   # selling deeper gets less
    assert buys == sorted(buys)                   # buying deeper pays more


def test_quote_is_capped_to_the_shallower_book(upbit_books, binance_books):
    up, bn = upbit_books[4], binance_books[0]
    upbit_bid_depth = sum(q for _, q in up.bids)
    q = sell_upbit(up, bn, FX, upbit_bid_depth + 1)
    assert q.qty == pytest.approx(upbit_bid_depth)
    assert q.binance.qty == pytest.approx(upbit_bid_depth)


def test_entry_and_exit_quotes_mirror_each_other(upbit_books, binance_books):
    up, bn = upbit_books[4], binance_books[0]
    assert entry_quote(Direction.RICH, up, bn, FX, 0.1) == sell_upbit(up, bn, FX, 0.1)
    assert exit_quote(Direction.RICH, up, bn, FX, 0.1) == buy_upbit(up, bn, FX, 0.1)
    assert entry_quote(Direction.CHEAP, up, bn, FX, 0.1) == buy_upbit(up, bn, FX, 0.1)
    assert edge(Direction.RICH, 0.02, 0.01) == pytest.approx(0.01)
    assert edge(Direction.CHEAP, 0.02, 0.01) == pytest.approx(-0.01)


def test_fx_rate_is_never_a_silent_default():
    with pytest.raises(NoFxRate, match="KRW-USDT"):
        fx_from_book(None)
    with pytest.raises(NoFxRate):
        fx_fixed(0)
