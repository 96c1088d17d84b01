"""Real-time paper: an intent sent to a coordinator that died is not waited on for ever.

Real Ray actors and real Redis snapshots, no lockstep: the strategy shard decides on books while
its coordinator is dead, so the intent is lost with it (its IntentLink is down; the Ray call it falls
back to goes nowhere); the coordinator comes back from its
snapshot, `resync` tells the shard what the desk holds, the shard sends the intent again, and the
coordinator takes each intent id once.
"""
from __future__ import annotations

import time
from dataclasses import replace
from itertools import groupby

import ray

from actors.coordinator import PortfolioRiskCoordinator
from actors.strategy import SymbolStrategyActor
from config.loader import load_profile
from marketdata.synthetic import SyntheticConfig, SyntheticMarket
from paper.run import seed_coins
from tests.support.polling import poll

def test_an_intent_lost_with_the_coordinator_is_sent_again_and_taken_once(ray_cluster, persist):
    profile = load_profile("paper-top50-local")
    params = profile.to_domain()
    params = replace(params, strategy=replace(params.strategy, mode="absolute", baseline_bps=-2000.0))
    market = SyntheticMarket(SyntheticConfig(coins=2, days=60 / 86_400, seed=11))
    coins = list(market.coins)
    prices = {c: float(px) * market.cal.ratio.mean for c, px in zip(coins, market.price_usdt)}
    balances = {(v, a): x for v, assets in profile.inventory.items() for a, x in assets.items()}
    balances.update(seed_coins(coins, prices, params.strategy.order_notional_krw, ("upbit", "binance")))
    instants = [list(group) for _, group in groupby(market.books(), key=lambda b: b.ts_ms)]

    def coordinator(restarts: int):
        return PortfolioRiskCoordinator.remote(coins, params, balances, False, None,
                                               persist=persist.restarted(restarts))
    first = coordinator(0)
    shard = SymbolStrategyActor.remote(coins, params.strategy, params.market, params.fx, first, False, None,
                                       "strategy-0", persist)
    ray.get(first.set_peers.remote({c: shard for c in coins}))
    ray.get(shard.set_peers.remote(first))       # its intents go over an IntentLink to `first`...
    ray.kill(first, no_restart=True)             # ...whose process dies: the link goes down with it

    # Books reach the shard alone: it decides and sends its intents to the dead coordinator.
    fed = 0
    while not ray.get(shard.pending_symbols.remote()):
        ray.get(shard.on_books.remote(instants[fed], time.time()))
        fed += 1
    waiting = ray.get(shard.pending_symbols.remote())
    assert ray.get(shard.stats.remote())["intents"] == len(waiting)

    second = coordinator(1)      # from the snapshot its predecessor wrote at the start
    for books in instants[:fed]:
        ray.get(second.on_books.remote(books))
    ray.get(second.set_peers.remote({c: shard for c in coins}))
    ray.get(shard.set_peers.remote(second))
    assert ray.get(ray.get(second.resync.remote())) == [len(waiting)]       # sent again
    poll(lambda: ray.get(second.checkpoint.remote()).trace.intents == len(waiting))
    # The entry's orders fill on the books after their latency; then the shard hears it opened.
    for books in instants[fed:fed + 20]:
        ray.get([second.on_books.remote(books), shard.on_books.remote(books, time.time())])
    poll(lambda: set(waiting) - set(ray.get(shard.pending_symbols.remote())) == set(waiting))   # answered

    desk = ray.get(second.checkpoint.remote())
    assert [d.symbol for d in desk.portfolio.decisions] == waiting and desk.trace.orders, \
        "the re-sent entry was not decided and traded"
    before = len(desk.portfolio.decisions)
    # A second resync (say, another restart): nothing is pending, nothing goes again, nothing is taken twice.
    assert ray.get(ray.get(second.resync.remote())) == [0]
    assert ray.get(second.counters.remote())["submits_handled"] == 1
    assert len(ray.get(second.checkpoint.remote()).portfolio.decisions) == before
    ray.kill(second)
    ray.kill(shard)


def test_a_restart_storm_freezes_the_desk_and_a_restart_keeps_it_frozen(ray_cluster, persist):
    """The supervisor escalates through `freeze` (paper.graph.WATCH); entries stop, and stay stopped."""
    from paper.graph import WATCH
    assert WATCH["coordinator"] == {"freeze_method": "freeze"}
    profile = load_profile("paper-top50-local")
    params = profile.to_domain()
    balances = {(v, a): x for v, assets in profile.inventory.items() for a, x in assets.items()}
    first = PortfolioRiskCoordinator.remote(["BTC"], params, balances, False, None, persist=persist)
    ray.get(first.freeze.remote("restart storm: strategy-0 died 6 times within 60 s"))
    assert ray.get(first.checkpoint.remote()).portfolio.risk.frozen.startswith("restart storm")
    ray.kill(first, no_restart=True)
    second = PortfolioRiskCoordinator.remote(["BTC"], params, balances, False, None, persist=persist.restarted(1))
    assert ray.get(second.checkpoint.remote()).portfolio.risk.frozen.startswith("restart storm")
    ray.kill(second)


def test_an_intent_the_desk_refused_is_taken_again_under_its_id_and_a_taken_one_is_not():
    """An exit is retried under its position's id (`<position>-exit`). A coordinator that kept a refused
    exit's id as taken dropped every retry, and the position never closed (a resumed live run answers
    intents 'rejected' until its orders are settled, so an exit due at once hit this). A re-sent intent
    the desk took and did not refuse is still dropped."""
    from actors.coordinator import DeskHost
    from domain.orders import Direction, OrderIntent, Purpose
    from paper.desk import News

    class Shard:
        def __init__(self):
            self.heard: list = []
            self.on_news = self

        def remote(self, news):
            self.heard.extend(news)

    class Desk:
        def __init__(self):
            self.news: list = []

        def take_news(self):
            news, self.news = self.news, []
            return news

    host = DeskHost.__new__(DeskHost)
    host.decided, host.answered, host.views, host.calls, host.reporter = {}, {}, {}, {"news_sent": 0}, None
    host.routes, host.desk = {"BTC": Shard()}, Desk()
    exit_ = OrderIntent("BTC-p2-exit", "BTC", 1, Purpose.EXIT, Direction.RICH, 0.1, 0.01, "time_limit", "BTC-p2")

    assert host._fresh([exit_]) == [exit_]
    host.desk.news.append(News("BTC", "rejected", 1))
    host._publish()
    assert host.answered["BTC"] == "BTC-p2-exit"
    assert host._fresh([exit_]) == [exit_], "the retried exit is taken"
    assert host._fresh([exit_]) == [], "taken and not refused: a re-send is dropped"
