"""Benchmark and parity scenarios on the SYNTHETIC Top-N stream (never market results)."""
from __future__ import annotations

from backtest.streams import Stream
from config.loader import load_profile
from marketdata.synthetic import SyntheticConfig, SyntheticMarket

NOTE = "SYNTHETIC DATA: generated books, not a market result."


def synthetic_profile(coins: int, trading: bool, **sections: dict):
    """backtest-synthetic for `coins` coins; `trading` zeroes the taker fees and lowers the entry bar.

    The zero-fee variant samples the premium every 10 s into a 50-minute window and enters at
    1.5 sigma: it trades within minutes of any stream (the parity tests and the busy-path
    benchmark need that), independent of the shipped profile's tuning. `sections` overrides
    fields per profile section, e.g. strategy={"take_profit_bps": 40}, risk={...}, fx={...}.
    """
    profile = load_profile("backtest-synthetic")
    update = {"universe": profile.universe.model_copy(update={"top_n": coins})}
    if trading:
        venues = profile.venues
        update["venues"] = venues.model_copy(update={
            v: getattr(venues, v).model_copy(update={"taker_fee": 0.0}) for v in ("upbit", "binance", "binance_usdm")})
        update["strategy"] = profile.strategy.model_copy(update={
            "entry_edge_bps": 2.0, "z_entry": 1.5, "take_profit_bps": 5.0, "stop_loss_bps": 50.0,
            "z_window": 300, "z_sample_ms": 10_000, "z_min_samples": 60, "max_hold_ms": 7_200_000,
            "cooldown_ms": 60_000})
    profile = profile.model_copy(update=update)
    return with_sections(profile, **sections) if sections else profile


def with_sections(profile, **sections: dict):
    """The profile with fields of its sections replaced (venue sections by name, e.g. venues={"upbit": {...}})."""
    update = {}
    for name, fields in sections.items():
        section = getattr(profile, name)
        if name == "venues":
            fields = {v: getattr(section, v).model_copy(update=f) for v, f in fields.items()}
        update[name] = section.model_copy(update=fields)
    return profile.model_copy(update=update)


def synthetic_stream(coins: int, days: float, seed: int = 7, **config) -> Stream:
    """The generator's stream, as Books (plain path) and as column chunks (fast path)."""
    market = SyntheticMarket(SyntheticConfig(coins=coins, days=days, seed=seed, **config))
    return Stream(market.books(), (NOTE,), True, market.source, tuple(market.coins), market.column_chunks)
