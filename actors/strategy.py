"""SymbolStrategyActor: runs the domain strategy rules for a shard of symbols and sends intents to the coordinator."""
from __future__ import annotations

import time
from typing import Any

import ray

from actors.telemetry import Telemetry
from domain.book import Book
from domain.params import FxParams, Market, StrategyParams
from paper.shard import StrategyShard


@ray.remote(num_cpus=0)
class SymbolStrategyActor:
    """One shard of symbols (one symbol when the shard size is 1)."""

    def __init__(self, symbols: list[str], params: StrategyParams, market: Market, fx: FxParams, coordinator: Any,
                 clocked: bool = False, telemetry: tuple[Any, Any] | None = None, name: str = "strategy"):
        self.shard = StrategyShard(symbols, params, market, fx, clocked)
        self.telemetry = Telemetry(*telemetry[:1], name, alerts=telemetry[1]) if telemetry else None
        self.coordinator = coordinator
        self.latency_ms: list[float] = []   # feed receive -> decision, one sample per batch
        self.intents = 0
        self.calls = {"submits_sent": 0, "news_handled": 0}   # lockstep: is every message answered?

    def on_books(self, books: list[Book], received_at: float) -> None:
        intents = self.shard.on_books(books)
        decided_at = time.time()
        self.latency_ms.append((decided_at - received_at) * 1000)
        if self.telemetry is not None:
            self.telemetry.hop("feed_to_strategy", max(decided_at - received_at, 0.0))
        self._submit(intents, received_at, decided_at)

    def close_instant(self, ts_ms: int) -> None:
        """Lockstep: decide the instant now that all its books are in."""
        self._submit(self.shard.close_instant(ts_ms))

    def on_news(self, news: list) -> None:
        self.calls["news_handled"] += 1
        self._submit([i for item in news if (i := self.shard.on_news(item.symbol, item.kind, item.ts_ms, item.view))])

    def _submit(self, intents: list, received_at: float = 0.0, decided_at: float = 0.0) -> None:
        if intents:
            self.intents += len(intents)
            self.coordinator.submit.remote(intents, received_at, decided_at)
            self.calls["submits_sent"] += 1

    def counters(self) -> dict[str, int]:
        return dict(self.calls)

    def stats(self) -> dict:
        if self.telemetry is not None:
            self.telemetry.flush()
        return {"symbols": sorted(self.shard.strategies), "intents": self.intents, "latency_ms": list(self.latency_ms)}
