"""A short deterministic trading scenario with real activity (orders, fills, round trips, a stuck leg):
4 synthetic coins over 30 s with a loose absolute entry, as the chaos tests replay it."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from config.loader import load_profile
from domain.book import Book
from domain.engine import Engine
from marketdata.synthetic import SyntheticConfig, SyntheticMarket
from paper.run import seed_coins


@dataclass
class Scenario:
    profile: Any
    params: Any
    books: list[Book]
    coins: list[str]
    balances: dict

    def engine(self) -> Engine:
        """A fresh engine over the scenario's configuration (nothing replayed yet)."""
        p = self.params
        return Engine(self.coins, p.strategy, p.risk, p.market, p.fx, dict(self.balances))

    def run(self, books: list[Book] | None = None) -> Engine:
        """The in-process engine over `books` (default all), finished: the no-chaos reference."""
        engine = self.engine()
        for book in self.books if books is None else books:
            engine.on_book(book)
        engine.finish()
        return engine


def scenario(seconds: int = 30, coins: int = 4, seed: int = 11) -> Scenario:
    profile = load_profile("paper-top50-local")
    params = profile.to_domain()
    strat = replace(params.strategy, mode="absolute", baseline_bps=-2000.0, max_hold_ms=4000, cooldown_ms=1000)
    params = replace(params, strategy=strat)
    market = SyntheticMarket(SyntheticConfig(coins=coins, days=seconds / 86_400, seed=seed))
    names = list(market.coins)
    rate = market.cal.ratio.mean
    prices = {c: float(px) * rate for c, px in zip(names, market.price_usdt)}
    balances = {(v, a): x for v, assets in profile.inventory.items() for a, x in assets.items()}
    balances.update(seed_coins(names, prices, strat.order_notional_krw, ("upbit", "binance")))
    return Scenario(profile, params, list(market.books()), names, balances)
