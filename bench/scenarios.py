"""Benchmark and parity scenarios on the SYNTHETIC Top-N stream (never market results)."""
from __future__ import annotations

from backtest.streams import Stream
from config.loader import load_profile
from marketdata.synthetic import SyntheticConfig, SyntheticMarket

NOTE = "SYNTHETIC DATA: generated books, not a market result."


def synthetic_profile(coins: int, trading: bool):
    """backtest-synthetic for `coins` coins; `trading` zeroes the taker fees and lowers the entry bar.

    The synthetic premium rarely stretches past the 30 bps of four regular-tier fees, so the
    shipped profile makes no trades; the trading variant exercises entries, fills and exits.
    """
    profile = load_profile("backtest-synthetic")
    update = {"universe": profile.universe.model_copy(update={"top_n": coins})}
    if trading:
        venues = profile.venues
        update["venues"] = venues.model_copy(update={
            v: getattr(venues, v).model_copy(update={"taker_fee": 0.0}) for v in ("upbit", "binance", "binance_usdm")})
        update["strategy"] = profile.strategy.model_copy(update={"entry_edge_bps": 2.0, "z_entry": 1.5,
                                                                 "take_profit_bps": 5.0})
    return profile.model_copy(update=update)


def synthetic_stream(coins: int, days: float, seed: int = 7) -> Stream:
    """The generator's stream, as Books (plain path) and as column chunks (fast path)."""
    market = SyntheticMarket(SyntheticConfig(coins=coins, days=days, seed=seed))
    return Stream(market.books(), (NOTE,), True, market.source, tuple(market.coins), market.column_chunks)
