"""PortfolioRiskCoordinator: approves intents (guards recorded), fills them on the paper desk, tells strategies."""
from __future__ import annotations

from typing import Any

import ray

from domain.book import Book
from domain.orders import OrderIntent
from paper.desk import PaperDesk


@ray.remote(num_cpus=0)
class PortfolioRiskCoordinator:
    """Holds the PaperDesk (domain Portfolio + fill model); strategies are reached through `routes`."""

    def __init__(self, symbols: list[str], params: Any, balances: dict):
        self.desk = PaperDesk(symbols, params.strategy, params.risk, params.market, params.fx, balances)
        self.routes: dict[str, Any] = {}

    def set_routes(self, routes: dict[str, Any]) -> None:
        """symbol -> the strategy actor that hosts it."""
        self.routes = routes

    def on_books(self, books: list[Book], received_at: float = 0.0) -> None:
        self.desk.on_books(books)
        self._publish()

    def submit(self, intents: list[OrderIntent]) -> None:
        for intent in intents:
            self.desk.submit(intent)
        self._publish()

    def _publish(self) -> None:
        by_actor: dict[Any, list] = {}
        for item in self.desk.take_news():
            by_actor.setdefault(self.routes[item.symbol], []).append(item)
        for handle, news in by_actor.items():
            handle.on_news.remote(news)

    def status(self) -> list[dict]:
        """Rows for the live status table."""
        return self.desk.status_rows()

    def checkpoint(self) -> PaperDesk:
        """A copy of the desk as it stands (Ray pickles it), for the periodic KPI checkpoint."""
        return self.desk

    def finish(self) -> PaperDesk:
        """End of run: in-flight orders meet the last books; return the desk for the KPIs and trade log."""
        self.desk.finish()
        self._publish()
        return self.desk
