"""StrategyShard and PaperDesk against the in-process Engine on the same synthetic books (no Ray)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from config.loader import load_profile
from domain.engine import Engine
from marketdata.synthetic import SyntheticConfig, SyntheticMarket
from paper.desk import PaperDesk
from paper.run import seed_coins
from paper.shard import StrategyShard


def _setup(tmp_path):
    profile = load_profile("paper-top50-local")
    params = profile.to_domain()
    strat = replace(params.strategy, mode="absolute", baseline_bps=-2000.0, max_hold_ms=5000, cooldown_ms=1000)
    market = SyntheticMarket(SyntheticConfig(coins=3, days=120 / 86_400, seed=3))
    balances = {(v, a): x for v, assets in profile.inventory.items() for a, x in assets.items()}
    rate = market.cal.ratio.mean
    prices = {c: float(px) * rate for c, px in zip(market.coins, market.price_usdt)}
    balances.update(seed_coins(market.coins, prices, strat.order_notional_krw, ("upbit", "binance")))
    return params, strat, market, balances


def test_shard_plus_desk_trades_like_the_engine_when_fed_one_instant_at_a_time(tmp_path):
    """Same books, same rules: the actor-side pieces enter and exit exactly the engine's round trips."""
    params, strat, market, balances = _setup(tmp_path)
    symbols = list(market.coins)
    engine = Engine(symbols, strat, params.risk, params.market, params.fx, dict(balances))
    desk = PaperDesk(symbols, strat, params.risk, params.market, params.fx, dict(balances))
    shard = StrategyShard(symbols, strat, params.market, params.fx)
    instant: list = []
    books = list(market.books())

    def flush():
        desk.on_books(instant)
        for intent in shard.on_books(instant):
            desk.submit(intent)
        while news := desk.take_news():
            for item in news:
                if intent := shard.on_news(item.symbol, item.kind, item.ts_ms, item.view):
                    desk.submit(intent)

    for book in books:
        engine.on_book(book)
        if instant and book.ts_ms != instant[-1].ts_ms:
            flush()
            instant = []
        instant.append(book)
    flush()
    engine.finish()
    desk.finish()
    got = [(rt.position_id, rt.entry_ts_ms, rt.exit_ts_ms, rt.exit_reason) for rt in desk.round_trips()]
    want = [(rt.position_id, rt.entry_ts_ms, rt.exit_ts_ms, rt.exit_reason) for rt in engine.round_trips()]
    assert len(want) >= 3
    assert got == want
    assert sum(r.pnl_krw for r in desk.round_trips()) == pytest.approx(sum(r.pnl_krw for r in engine.round_trips()))


def test_desk_keeps_an_older_book_without_moving_the_clock_back(tmp_path):
    params, strat, market, balances = _setup(tmp_path)
    desk = PaperDesk(list(market.coins), strat, params.risk, params.market, params.fx, balances)
    books = list(market.books())
    late, newer = books[0], books[-1]
    desk.on_books([newer])
    desk.on_books([late])
    assert desk.now == newer.ts_ms and desk.late_books == 1
    assert desk.books[(late.venue, late.symbol)] is late or (late.venue, late.symbol) == (newer.venue, newer.symbol)


def test_shard_rejects_unknown_news_kind(tmp_path):
    params, strat, market, _ = _setup(tmp_path)
    shard = StrategyShard(list(market.coins), strat, params.market, params.fx)
    with pytest.raises(ValueError, match="news kind 'bogus' for BTC"):
        shard.on_news("BTC", "bogus", 0, None)
