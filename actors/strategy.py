"""SymbolStrategyActor: runs the domain strategy rules for a shard of symbols and sends intents to the coordinator."""
from __future__ import annotations

import time
from typing import Any

import ray

from domain.book import Book
from domain.params import FxParams, Market, StrategyParams
from paper.shard import StrategyShard


@ray.remote(num_cpus=0)
class SymbolStrategyActor:
    """One shard of symbols (one symbol when the shard size is 1)."""

    def __init__(self, symbols: list[str], params: StrategyParams, market: Market, fx: FxParams, coordinator: Any):
        self.shard = StrategyShard(symbols, params, market, fx)
        self.coordinator = coordinator
        self.latency_ms: list[float] = []   # feed receive -> decision, one sample per batch
        self.intents = 0

    def on_books(self, books: list[Book], received_at: float) -> None:
        intents = self.shard.on_books(books)
        self.latency_ms.append((time.time() - received_at) * 1000)
        if intents:
            self.intents += len(intents)
            self.coordinator.submit.remote(intents)

    def on_news(self, news: list) -> None:
        for item in news:
            self.shard.on_news(item.symbol, item.kind, item.ts_ms, item.view)

    def stats(self) -> dict:
        return {"symbols": sorted(self.shard.strategies), "intents": self.intents, "latency_ms": list(self.latency_ms)}
