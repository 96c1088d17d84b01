"""SymbolStrategyActor: runs the domain strategy rules for a shard of symbols and sends intents to the coordinator."""
from __future__ import annotations

import logging
import time
from typing import Any

import ray

from actors.book_channel import IntentLink, serves_books
from actors.persistence import Persist, snapshotter
from actors.telemetry import Telemetry
from domain.book import Book
from domain.params import FxParams, Market, StrategyParams
from domain.orders import OrderIntent
from domain.state import export_shard, rebuild, record, restore_shard
from paper.shard import StrategyShard

log = logging.getLogger("actors.strategy")


@ray.remote(num_cpus=0)
@serves_books
class SymbolStrategyActor:
    """One shard of symbols (one symbol when the shard size is 1)."""

    def __init__(self, symbols: list[str], params: StrategyParams, market: Market, fx: FxParams, coordinator: Any,
                 clocked: bool = False, telemetry: tuple[Any, Any] | None = None, name: str = "strategy",
                 persist: Persist | None = None):
        self.shard = StrategyShard(symbols, params, market, fx, clocked)
        self.telemetry = Telemetry(*telemetry[:1], name, alerts=telemetry[1]) if telemetry else None
        self.coordinator, self.name = coordinator, name
        self.link: IntentLink | None = None      # set_peers connects it (real time)
        self.latency_ms: list[float] = []   # feed receive -> decision, one sample per batch
        self.intents = 0
        self.calls = {"submits_sent": 0, "news_handled": 0}   # lockstep: is every message answered?
        self.sent: dict[str, OrderIntent] = {}   # the last intent sent per symbol, re-sent by `sync` if lost
        # Cooldowns, rolling windows, position views: restored before the first message.
        self.snap = snapshotter(persist, "strategy", name, self._export, self._load)

    def _export(self) -> dict:
        return {"shard": export_shard(self.shard), "calls": dict(self.calls), "intents": self.intents,
                "sent": [record(i) for i in self.sent.values()]}

    def _load(self, doc: dict) -> None:
        restore_shard(self.shard, doc["shard"])
        self.calls, self.intents = dict(doc["calls"]), int(doc["intents"])
        sent = [rebuild(OrderIntent, raw, f"strategy.sent[{i}]") for i, raw in enumerate(doc["sent"])]
        self.sent = {i.symbol: i for i in sent}

    def sync(self, state: dict[str, tuple]) -> int:
        """The coordinator's word after a restart, per symbol: (position view, last intent taken, last
        intent answered). A pending intent it never took is sent again (it takes an id once); one it
        answered ends the wait (the answer died with an actor); the position is the desk's. Returns
        how many intents went again."""
        again = []
        for symbol, (view, taken, answered) in state.items():
            strat = self.shard.strategies[symbol]
            intent = self.sent.get(symbol)
            if strat.pending and intent is not None and intent.intent_id != answered:
                if intent.intent_id != taken:
                    again.append(intent)
                continue          # still being worked: its answer will come
            strat.pending, strat.position = False, view
        if again:
            self.intents -= len(again)      # counted when first sent
            self._submit(again)
        self._changed(True)
        return len(again)

    def _changed(self, urgent: bool) -> None:
        if self.snap is not None:
            self.snap.changed(urgent=urgent or self.shard.clocked)

    def set_peers(self, coordinator: Any, telemetry: tuple[Any, Any] | None = None) -> None:
        """At the start and after a restart elsewhere: the current coordinator handle (and telemetry
        sinks). Real time: intents go to the coordinator's inbox (actors/book_channel.py), a Ray call
        costing milliseconds where the coordinator is busy with books; lockstep keeps Ray calls."""
        self.coordinator = coordinator
        if self.link is not None:
            self.link.close()
            self.link = None
        if not self.shard.clocked and coordinator is not None:
            try:
                self.link = IntentLink(ray.get(coordinator.book_inbox.remote()))
            except (OSError, AttributeError, ray.exceptions.RayError) as err:    # through Ray meanwhile
                log.warning("%s: no intent link to the coordinator (%s); sending through Ray", self.name, err)
        if self.telemetry is not None:
            self.telemetry.retarget(telemetry)

    def snapshot_stats(self) -> dict | None:
        return self.snap.stats() if self.snap is not None else None

    def on_books(self, books: list[Book], received_at: float) -> None:
        intents = self.shard.on_books(books)
        decided_at = time.time()
        self.latency_ms.append((decided_at - received_at) * 1000)
        if self.telemetry is not None:
            self.telemetry.hop("feed_to_strategy", max(decided_at - received_at, 0.0))
        self._submit(intents, received_at, decided_at)
        self._changed(bool(intents))

    def close_instant(self, ts_ms: int) -> None:
        """Lockstep: decide the instant now that all its books are in."""
        self._submit(self.shard.close_instant(ts_ms))
        self._changed(True)

    def on_news(self, news: list) -> None:
        self.calls["news_handled"] += 1
        self._submit([i for item in news if (i := self.shard.on_news(item.symbol, item.kind, item.ts_ms, item.view))])
        self._changed(True)

    def _submit(self, intents: list, received_at: float = 0.0, decided_at: float = 0.0) -> None:
        if intents:
            self.intents += len(intents)
            self.sent.update((i.symbol, i) for i in intents)
            if self.link is None or not self.link.send(intents, received_at, decided_at):
                self.coordinator.submit.remote(intents, received_at, decided_at)
            self.calls["submits_sent"] += 1

    def pending_symbols(self) -> list[str]:
        """Symbols whose intent awaits the coordinator's answer (status, and the resync tests)."""
        return sorted(s for s, strat in self.shard.strategies.items() if strat.pending)

    def counters(self) -> dict[str, int]:
        return dict(self.calls)

    def stats(self) -> dict:
        if self.telemetry is not None:
            self.telemetry.flush()
        return {"symbols": sorted(self.shard.strategies), "intents": self.intents, "latency_ms": list(self.latency_ms)}
