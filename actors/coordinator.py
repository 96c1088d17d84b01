"""PortfolioRiskCoordinator: approves intents (guards recorded), fills them on the paper desk, tells strategies.

`DeskHost` is what every coordinator shares, paper or live (actors/live_coordinator.py): the routes to
the strategy actors, news out to them, the hop latencies, and metrics/alerts through DeskReporter.
"""
from __future__ import annotations

import time
from typing import Any

import ray

from actors.book_channel import serves_books
from actors.persistence import Persist, snapshotter
from actors.reporting import DeskReporter
from actors.telemetry import Telemetry
from domain.book import Book
from domain.orders import OrderIntent
from domain.state import export_engine, rebuild, record, restore_engine
from domain.strategy import PositionView
from paper.desk import News, PaperDesk


class DeskHost:
    """The part of a coordinator around its desk (`self.desk`, set by the subclass)."""

    desk: Any

    def _host(self, telemetry: tuple[Any, Any] | None) -> None:
        self.telemetry = Telemetry(*telemetry[:1], "coordinator", alerts=telemetry[1]) if telemetry else None
        self.reporter = DeskReporter(self.telemetry) if self.telemetry else None
        self.routes: dict[str, Any] = {}
        self.calls = {"submits_handled": 0, "news_sent": 0}   # lockstep: is every message answered?
        # What the strategies were told, per symbol: the open position's view, the last intent taken
        # and the last intent answered (news sent). After a restart `resync` hands them to the shards.
        self.views: dict[str, PositionView] = {}
        self.decided: dict[str, str] = {}
        self.answered: dict[str, str] = {}

    def _fresh(self, intents: list[OrderIntent]) -> list[OrderIntent]:
        """The intents not taken before (a shard re-sends after a restart), marked as taken."""
        out = []
        for intent in intents:
            if self.decided.get(intent.symbol) != intent.intent_id:
                self.decided[intent.symbol] = intent.intent_id
                out.append(intent)
        return out

    def resync(self) -> list:
        """After a restart (this actor's or a shard's): tell each shard what this desk holds for its
        symbols, so none waits for an answer that died with an actor or trades on a position the desk
        does not hold. Returns the calls' refs (each resolves to the intents that shard sent again)."""
        by_actor: dict[Any, dict] = {}
        for symbol, handle in self.routes.items():
            by_actor.setdefault(handle, {})[symbol] = (self.views.get(symbol), self.decided.get(symbol),
                                                       self.answered.get(symbol))
        return [handle.sync.remote(state) for handle, state in by_actor.items()]

    def _host_state(self) -> dict:
        return {"views": {s: record(v) for s, v in self.views.items()}, "decided": dict(self.decided),
                "answered": dict(self.answered)}

    def _load_host_state(self, doc: dict) -> None:
        self.views = {s: rebuild(PositionView, v, f"coordinator.views[{s}]") for s, v in doc["views"].items()}
        self.decided, self.answered = dict(doc["decided"]), dict(doc["answered"])

    def set_peers(self, routes: dict[str, Any], telemetry: tuple[Any, Any] | None = None) -> None:
        """After a restart elsewhere: the current strategy handles (and telemetry sinks)."""
        self.routes = routes
        if self.telemetry is not None:
            self.telemetry.retarget(telemetry)

    def _hops(self, arrived: float, orders_before: int, received_at: float, decided_at: float) -> None:
        """Latency samples of one strategy batch: strategy -> coordinator, and on to the first order sent."""
        if self.telemetry is not None and decided_at:
            self.telemetry.hop("strategy_to_coordinator", max(arrived - decided_at, 0.0))
            if len(self.desk.trace.orders) > orders_before:
                sent = time.time()
                self.telemetry.hop("coordinator_to_order", sent - arrived)
                self.telemetry.hop("feed_to_order", max(sent - received_at, 0.0))

    def _publish(self) -> None:
        by_actor: dict[Any, list] = {}
        for item in self.desk.take_news():
            by_actor.setdefault(self.routes[item.symbol], []).append(item)
            self.answered[item.symbol] = self.decided.get(item.symbol, "")
            if item.kind == "rejected":     # a refused intent may come again under its id (an exit is
                self.decided.pop(item.symbol, None)     # retried with its position's): take it then
            if item.kind == "opened":
                self.views[item.symbol] = item.view
            elif item.kind == "closed":
                self.views.pop(item.symbol, None)
        for handle, news in by_actor.items():
            handle.on_news.remote(news)
            self.calls["news_sent"] += 1
        if self.reporter is not None and by_actor:
            self.reporter.report(self.desk)

    def counters(self) -> dict[str, int]:
        return dict(self.calls)

    def freeze(self, reason: str) -> None:
        """The supervisor's restart-storm escalation: no new entries (RiskState.frozen), exits go on."""
        self.desk.portfolio.risk.frozen = reason
        if self.telemetry is not None:
            self.telemetry.alert("P0", "frozen", f"trading frozen: {reason}")
        self._persist_now()

    def _persist_now(self) -> None:
        """Write the state at once where there are snapshots (the paper coordinator)."""

    def status(self) -> list[dict]:
        """Rows for the live status table."""
        return self.desk.status_rows()

    def _close_telemetry(self) -> None:
        """End of run: report the desk a last time and send what is buffered."""
        if self.telemetry is not None:
            self.reporter.report(self.desk)
            self.telemetry.close()


@ray.remote(num_cpus=0)
@serves_books
class PortfolioRiskCoordinator(DeskHost):
    """Holds the PaperDesk (domain Portfolio + fill model); strategies are reached through `routes`."""

    def __init__(self, symbols: list[str], params: Any, balances: dict, clocked: bool = False,
                 telemetry: tuple[Any, Any] | None = None, persist: Persist | None = None,
                 store_url: str | None = None):
        self.desk = PaperDesk(symbols, params.strategy, params.risk, params.market, params.fx, balances,
                              clocked=clocked)
        self._host(telemetry)
        self.clocked = clocked
        self.held: list[OrderIntent] = []   # clocked: an instant's intents, approved in symbol order
        # Positions, open orders, balances, PnL, guard counters: restored before the first message.
        self.snap = snapshotter(persist, "coordinator", "main", self._export, self._load)
        self._marks = self._progress()
        # Orders, fills, round trips and guard decisions to the durable store (SQLAlchemy), buffered
        # through a database outage; written idempotently, so a restart never doubles a row.
        self.journal = None
        if store_url is not None:
            from actors.trade_journal import TradeJournal
            self.journal = TradeJournal(store_url, persist.run_id if persist else "paper")

    def _export(self) -> dict:
        # `held` is not kept: it is non-empty only inside one lockstep step, never between two.
        return {"desk": export_engine(self.desk), "calls": dict(self.calls), "host": self._host_state()}

    def _load(self, doc: dict) -> None:
        restore_engine(self.desk, doc["desk"], news_type=News)
        self.calls = dict(doc["calls"])
        self._load_host_state(doc["host"])
        if self.reporter is not None:
            self.reporter.resume(self.desk)

    def _progress(self) -> tuple[int, ...]:
        t = self.desk.trace
        return (len(t.orders), len(t.fills), len(self.desk.portfolio.decisions), len(self.desk.news))

    def _changed(self) -> None:
        """Snapshot after a change: at once when orders, fills or decisions moved (or in lockstep,
        where every step must survive a kill), else at most every Snapshotter.min_interval_s."""
        if self.journal is not None:
            self.journal.sync(self.desk)
        if self.snap is None:
            return
        marks = self._progress()
        self.snap.changed(urgent=self.clocked or marks != self._marks)
        self._marks = marks

    def snapshot_stats(self) -> dict | None:
        return self.snap.stats() if self.snap is not None else None

    def _persist_now(self) -> None:
        if self.snap is not None:
            self.snap.changed(urgent=True)

    def on_books(self, books: list[Book], received_at: float = 0.0) -> None:
        self.desk.on_books(books)
        self._publish()
        self._changed()

    def close_instant(self) -> None:
        """Lockstep: the instant is complete; fill what is due and tell the strategies."""
        self.desk.close_instant()
        self._publish()
        self._changed()

    def submit(self, intents: list[OrderIntent], received_at: float = 0.0, decided_at: float = 0.0) -> None:
        """Intents of one strategy batch; `received_at` / `decided_at` time the hops for the latency metrics."""
        self.calls["submits_handled"] += 1
        if self.clocked:   # shards answer in any order; the engine approves an instant's intents by symbol
            self.held.extend(intents)
            self._changed()
            return
        arrived, orders_before = time.time(), len(self.desk.trace.orders)
        for intent in self._fresh(intents):
            self.desk.submit(intent)
        self._hops(arrived, orders_before, received_at, decided_at)
        self._publish()
        self._changed()

    def approve_instant(self) -> None:
        """Lockstep: every shard has decided the instant; approve its intents in symbol order."""
        held, self.held = sorted(self.held, key=lambda i: i.symbol), []
        for intent in self._fresh(held):
            self.desk.submit(intent)
        self._publish()
        self._changed()

    def checkpoint(self) -> PaperDesk:
        """A copy of the desk as it stands (Ray pickles it), for the periodic KPI checkpoint."""
        return self.desk

    def finish(self) -> PaperDesk:
        """End of run: in-flight orders meet the last books; return the desk for the KPIs and trade log."""
        self.desk.finish()
        self._publish()
        if self.snap is not None:
            self.snap.changed(urgent=True)
        if self.journal is not None:   # the rows the finish made, and how the run ended, to the database
            self.journal.sync(self.desk)
            self.journal.finish("completed", 0)
            self.journal.close()
        self._close_telemetry()
        return self.desk
