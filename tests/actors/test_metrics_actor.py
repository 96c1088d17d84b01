"""Real Ray: actors report through Telemetry, the MetricsActor serves the sum on 127.0.0.1, scraped over HTTP."""
from __future__ import annotations

import pytest
import ray

from actors.metrics_actor import MetricsActor
from actors.telemetry import Telemetry
from metrics.server import scrape
from tests.support.polling import poll

HOP = "arb_hop_latency_seconds"


@ray.remote(num_cpus=0)
class Reporter:
    """Stands where the feed, strategy and coordinator actors will: a Telemetry in another process."""

    def __init__(self, metrics, source):
        self.telemetry = Telemetry(metrics, source, flush_ms=50)

    def report(self, updates):
        for verb, metric, value, labels in updates:
            getattr(self.telemetry, verb)(metric, value, **labels)

    def close(self):
        return self.telemetry.close()


@pytest.fixture
def metrics_actor(ray_cluster):
    actor = MetricsActor.remote(port=0)
    url = ray.get(actor.url.remote())
    yield actor, url
    ray.get(actor.close.remote())
    ray.kill(actor)


def test_updates_from_several_actors_are_summed_and_scraped_over_http(metrics_actor):
    actor, url = metrics_actor
    assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
    feed = Reporter.remote(actor, "feed-upbit")
    coord = Reporter.remote(actor, "coordinator")
    ray.get(feed.report.remote([("inc", "book_updates", 120, {"venue": "upbit"})] +
                               [("observe", "hop_latency", s, {"hop": "feed_to_strategy"}) for s in (0.0008, 0.003, 0.04)]))
    ray.get(coord.report.remote([("set", "pnl_krw", -12_500.0, {}), ("set", "pnl_krw", 31_000.5, {}),
                                 ("set", "win_rate", 0.6, {}), ("set", "open_positions", 3, {}),
                                 ("set", "round_trips_per_hour", 4.5, {}), ("inc", "round_trips", 5, {}),
                                 ("inc", "guard_triggers", 2, {"guard": "max_open_positions"}),
                                 ("observe", "hop_latency", 0.0015, {"hop": "strategy_to_coordinator"})]))
    ray.get(feed.report.remote([("inc", "book_updates", 30, {"venue": "upbit"})]))
    got = poll(lambda: (s := scrape(url)).get(("arb_book_updates_total", (("venue", "upbit"),))) == 150 and
               s.get(("arb_round_trips_total", ())) == 5 and s)
    assert got[("arb_pnl_krw", ())] == 31_000.5               # a gauge shows the last value set
    assert got[("arb_win_rate", ())] == 0.6
    assert got[("arb_open_positions", ())] == 3
    assert got[("arb_round_trips_per_hour", ())] == 4.5
    assert got[("arb_guard_triggers_total", (("guard", "max_open_positions"),))] == 2
    assert got[("arb_book_updates_total", (("venue", "binance"),))] == 0
    feed_hop = (("hop", "feed_to_strategy"),)
    assert got[(f"{HOP}_count", feed_hop)] == 3
    assert got[(f"{HOP}_sum", feed_hop)] == pytest.approx(0.0438)
    assert got[(f"{HOP}_bucket", feed_hop + (("le", "0.001"),))] == 1
    assert got[(f"{HOP}_bucket", feed_hop + (("le", "0.005"),))] == 2
    assert got[(f"{HOP}_bucket", feed_hop + (("le", "0.05"),))] == 3
    assert got[(f"{HOP}_count", (("hop", "strategy_to_coordinator"),))] == 1
    closed = ray.get([feed.close.remote(), coord.close.remote()])
    assert [c["failed"] + c["dropped"] for c in closed] == [0, 0]
    stats = ray.get(actor.stats.remote())
    # what the senders counted arrived; 13 calls, fewer entries when a flush coalesced the two pnl
    # sets (one gauge value) or the two book_updates incs (one delta)
    assert 11 <= sum(c["updates"] for c in closed) == stats["updates"] <= 13
    assert stats["sources"] == ["coordinator", "feed-upbit"] and stats["refused"] == 0


def test_bad_updates_raise_where_they_are_made_and_a_bad_batch_is_refused_by_name(metrics_actor):
    actor, url = metrics_actor
    telemetry = Telemetry(actor, "strategy-1", flush_ms=1000)
    with pytest.raises(ValueError, match=r"unknown metric 'round_trip'"):
        telemetry.inc("round_trip")
    with pytest.raises(ValueError, match=r"pnl_krw is a gauge; use set\(\)"):
        telemetry.inc("pnl_krw", 5)
    with pytest.raises(ValueError, match=r"unknown hop 'feed_to_moon'"):
        telemetry.hop("feed_to_moon", 0.001)
    telemetry.inc("round_trips", 2)
    assert telemetry.close() == {"pushes": 1, "updates": 1, "alerts": 0, "failed": 0, "dropped": 0}
    with pytest.raises(ValueError, match=r"from rogue: inc\[0\]: metrics: unknown metric 'moon'"):
        ray.get(actor.push.remote({"source": "rogue", "inc": [["moon", {}, 1], ["round_trips", {}, 1]]}))
    got = scrape(url)
    assert got[("arb_round_trips_total", ())] == 3            # the good entry of the bad batch applied
    assert ray.get(actor.stats.remote())["refused"] == 1


def test_a_dead_metrics_actor_never_breaks_the_caller(ray_cluster):
    actor = MetricsActor.remote(port=0)
    ray.get(actor.url.remote())
    telemetry = Telemetry(actor, "coordinator", flush_ms=20)
    telemetry.inc("round_trips")
    poll(lambda: telemetry.stats()["pushes"] == 1)
    ray.kill(actor)
    for _ in range(3):
        telemetry.set("open_positions", 1)
        telemetry.flush()
    poll(lambda: telemetry.stats()["failed"] >= 1)
    counts = telemetry.close(timeout_s=2)
    assert counts["failed"] + counts["dropped"] >= 3 and counts["pushes"] >= 2


def test_sink_none_checks_updates_and_sends_nothing():
    telemetry = Telemetry(None, "feed-binance")
    telemetry.inc("book_updates", venue="binance")
    with pytest.raises(ValueError, match="unknown venue 'kraken'"):
        telemetry.inc("book_updates", venue="kraken")
    assert telemetry.flush() == 0
    with pytest.raises(ValueError, match=r"flush_ms 0 outside 1..60000"):
        Telemetry(None, "x", flush_ms=0)
