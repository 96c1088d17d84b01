"""Real Ray actor, real ccxt.pro, the loopback simulator: a Binance feed resyncs after a sequence gap,
both venues reconnect after a disconnect, a connection stalled by a malformed frame is cut and
resubscribed, and a busy sink gets coalesced batches without losing a book."""
from __future__ import annotations

import time

import pytest
import ray

from actors.book_channel import serves_books
from actors.feed import BOOK_LEVELS, ExchangeFeedActor, book_from_ccxt, exchange_config
from marketdata.synthetic import SyntheticConfig, SyntheticMarket
from sim import SimThread, ccxt_overrides
from tests.support.polling import poll


@ray.remote(num_cpus=0)
@serves_books
class Collector:
    """A sink that counts the books and calls it is sent and keeps the newest venue time per coin;
    `delay_s` makes each call take that long (a busy strategy)."""

    def __init__(self, delay_s: float = 0.0):
        self.books = 0
        self.calls = 0
        self.newest: dict[str, int] = {}
        self.delay_s = delay_s

    def on_books(self, books, received_at):
        time.sleep(self.delay_s)
        self.books += len(books)
        self.calls += 1
        for b in books:
            self.newest[b.symbol] = max(self.newest.get(b.symbol, 0), b.ts_ms)

    def count(self):
        return self.books

    def state(self):
        return self.calls, dict(self.newest)


def streaming(seed: int = 1):
    """A 2-coin market replayed at 20x by the simulator."""
    market = SyntheticMarket(SyntheticConfig(coins=2, days=600 / 86_400, seed=seed))
    sim = SimThread(market.books(), markets={"upbit": (*market.coins, "USDT"), "binance": market.coins,
                                             "binance_usdm": ()}, speed=20)
    return market, sim


def symbols_of(venue: str, coins) -> dict[str, str]:
    return {c: f"{c}/KRW" if venue == "upbit" else f"{c}/USDT" for c in coins}


def at_most_one_watch_per_subscription(stats: dict, symbols: int) -> bool:
    """watch_order_book ran once per symbol and once after each error; every other update was
    waited for on ccxt's own future (the per-update cost the feed saves)."""
    return stats["watches"] <= symbols + stats["resyncs"] + stats["reconnects"] + stats["malformed"]


def fault_and_recover(venue: str, fault: dict, counter: str, more: int, seed: int, **feed_kw) -> tuple[dict, int]:
    """A feed on `venue` over a streaming 2-coin market: once books flow, the simulator injects `fault`;
    wait until the feed counts it under `counter` and `more` books reach the sink after that. Returns the
    feed's final stats and how many symbols it watched."""
    market, sim = streaming(seed)
    symbols = symbols_of(venue, market.coins)
    with sim:
        sink = Collector.remote()
        feed = ExchangeFeedActor.remote(venue, ccxt_overrides(sim.urls(), venue), symbols, [(sink, None)], 20,
                                        **feed_kw)
        ray.get(feed.start.remote())
        poll(lambda: ray.get(sink.count.remote()) >= 5)
        sim.fault({**fault, "venue": venue})
        poll(lambda: ray.get(feed.stats.remote())[counter] >= 1)
        after = ray.get(sink.count.remote())
        poll(lambda: ray.get(sink.count.remote()) >= after + more)
        return ray.get(feed.stop.remote()), len(symbols)


def test_binance_feed_resyncs_after_a_sequence_gap_and_carries_on(ray_cluster):
    # 5 books reach the sink before the gap and 10 after the resync: more than 10 updates, whatever the timing
    stats, symbols = fault_and_recover("binance", {"kind": "gap", "skip": 3}, "resyncs", 10, seed=1)
    assert stats["resyncs"] >= 1 and stats["updates"] > 10
    assert at_most_one_watch_per_subscription(stats, symbols), stats


@pytest.mark.parametrize("venue", ["upbit", "binance"])
def test_feed_reconnects_after_a_disconnect_and_books_flow_again(ray_cluster, venue):
    """The connection the feed waited on is gone: it must watch again (a new connection), not wait on
    the dead one's futures."""
    stats, symbols = fault_and_recover(venue, {"kind": "disconnect"}, "reconnects", 10, seed=2)
    assert stats["reconnects"] >= 1 and stats["updates"] > 10
    assert at_most_one_watch_per_subscription(stats, symbols), stats


def test_a_malformed_frame_stalls_the_connection_and_the_feed_cuts_it_and_carries_on(ray_cluster):
    """ccxt.pro stops reading a connection after a frame it cannot parse and says nothing (until its
    keepalive, 180 s on Binance): the feed notices the silence, cuts the connection and resubscribes."""
    stats, _ = fault_and_recover("binance", {"kind": "malformed", "count": 1}, "stale", 10, seed=3, stale_s=1.0)
    assert stats["stale"] >= 1 and stats["reconnects"] >= 1, stats


def test_a_busy_sink_gets_fewer_batches_and_every_coins_newest_book(ray_cluster):
    """A sink slower than the flush period is not sent a batch while its last one runs; its books wait,
    newer replacing older, so it ends with the newest book of every coin like the quick sink."""
    market, sim = streaming(seed=3)
    with sim:
        quick, slow = Collector.remote(), Collector.remote(0.25)
        feed = ExchangeFeedActor.remote("binance", ccxt_overrides(sim.urls(), "binance"),
                                        symbols_of("binance", market.coins), [(quick, None), (slow, None)], 20)
        ray.get(feed.start.remote())
        poll(lambda: ray.get(slow.state.remote())[0] >= 4)
        stats = ray.get(feed.stop.remote())
        newest = ray.get(feed.seen.remote())
        assert set(newest) == set(market.coins)
        (quick_calls, quick_newest), (slow_calls, slow_newest) = poll(
            lambda: (s := ray.get([quick.state.remote(), slow.state.remote()]))[0][1] == s[1][1] == newest and s)
    assert stats["deferred"] > 0
    assert slow_calls < quick_calls / 2, (slow_calls, quick_calls)
    assert stats["sends"] == quick_calls + slow_calls


def test_a_deep_ccxt_book_becomes_a_book_of_its_best_levels_and_strategies_never_need_more():
    """ccxt.pro keeps the whole Binance book (a 1,000-level snapshot and every diff since): the feed
    converts and ships the best BOOK_LEVELS a side, which covers the deepest walk a profile may ask."""
    from config.schema import Strategy
    bids = [[100.0 - i * 0.01, 1.0 + i, 3] for i in range(1000)]     # ccxt levels may carry an order count
    asks = [[100.01 + i * 0.01, 2.0, 1] for i in range(1000)]
    book = book_from_ccxt("binance", "BTC", {"timestamp": 1_700_000_000_000, "bids": bids, "asks": asks})
    assert len(book.bids) == len(book.asks) == BOOK_LEVELS
    assert book.bids[0] == (100.0, 1.0) and book.bids[-1] == (bids[BOOK_LEVELS - 1][0], bids[BOOK_LEVELS - 1][1])
    deepest = max(m.le for m in Strategy.model_fields["depth_levels"].metadata if hasattr(m, "le"))
    assert deepest <= BOOK_LEVELS


def test_feed_config_turns_frame_compression_off_unless_asked():
    config = {"urls": {"api": {}}, "options": {"watchOrderBook": {"limit": 30}}}
    mine = exchange_config(config)
    assert mine["options"] == {"watchOrderBook": {"limit": 30}, "ws": {"compress": 0}}
    assert mine["enableRateLimit"] is False and config["options"] == {"watchOrderBook": {"limit": 30}}
    asked = exchange_config({"options": {"ws": {"compress": 15, "cost": 2}}})
    assert asked["options"]["ws"] == {"compress": 15, "cost": 2}
    assert exchange_config({})["options"] == {"ws": {"compress": 0}}


def test_book_stream_waits_on_ccxt_future_only_while_its_connection_and_subscription_stand():
    """ccxt drops a closed connection from `clients` and a gapped book from its subscriptions, maybe
    between resolving an update and the feed's next wait: a wait then must go through watch_order_book
    (reconnect, resubscribe), not hang on a future of the dead connection."""
    import asyncio

    import ccxt.pro as ccxtpro

    from actors.feed import BookStream

    async def scenario():
        exchange = ccxtpro.binance()
        client = exchange.client("ws://127.0.0.1:9/binance/stream/ws/0")    # never connected
        ob = exchange.order_book({"bids": [[1.0, 2.0]], "asks": [[1.1, 3.0]], "timestamp": 5})
        watched = []

        async def watch_order_book(symbol):
            watched.append(symbol)
            client.subscriptions["orderbook::" + symbol] = True
            return ob
        exchange.watch_order_book = watch_order_book
        stream = BookStream(exchange, "binance", "BTC/USDT")

        async def next_book(resolve: bool = False):
            """stream.next(), ccxt resolving the symbol's future meanwhile if `resolve`."""
            waiting = asyncio.ensure_future(stream.next())
            await asyncio.sleep(0)
            if resolve:
                client.resolve(ob, "orderbook::BTC/USDT")
            return await asyncio.wait_for(waiting, 1)       # a wait on a dead connection times out

        assert await next_book() is ob and watched == ["BTC/USDT"]             # subscribes
        assert await next_book(resolve=True) is ob and len(watched) == 1      # then ccxt's future
        del exchange.clients[client.url]                                       # connection closed
        assert await next_book() is ob and len(watched) == 2
        exchange.clients[client.url] = client                                  # a new connection
        assert await next_book() is ob and len(watched) == 3
        assert await next_book(resolve=True) is ob and len(watched) == 3
        del client.subscriptions["orderbook::BTC/USDT"]                        # sequence gap
        assert await next_book() is ob and len(watched) == 4
        stream.drop()                                                          # an error in the feed
        assert await next_book() is ob and len(watched) == 5
        assert await next_book(resolve=True) is ob and len(watched) == 5 and stream.watches == 5
        await exchange.close()

    asyncio.run(scenario())


def test_a_sink_that_dies_loses_its_channel_and_its_successor_gets_the_books(ray_cluster):
    """A sink actor killed mid-stream: the feed counts the lost channel, holds that sink's books and
    carries on for the others; set_sinks (what graph.rewire calls after a restart) connects the new
    sink, which then gets every coin's newest book."""
    market, sim = streaming(seed=4)
    with sim:
        other, doomed = Collector.remote(), Collector.remote()
        feed = ExchangeFeedActor.remote("binance", ccxt_overrides(sim.urls(), "binance"),
                                        symbols_of("binance", market.coins), [(other, None), (doomed, None)], 2)
        ray.get(feed.start.remote())
        poll(lambda: ray.get(doomed.count.remote()) >= 3)
        ray.kill(doomed)
        poll(lambda: ray.get(feed.stats.remote())["sink_lost"] >= 1)
        before = ray.get(other.count.remote())
        poll(lambda: ray.get(other.count.remote()) >= before + 5)        # the others carry on
        successor = Collector.remote()
        ray.get(feed.set_sinks.remote([(other, None), (successor, None)]))
        poll(lambda: ray.get(successor.count.remote()) >= 3)
        ray.get(feed.stop.remote())
        newest = ray.get(feed.seen.remote())
        assert poll(lambda: ray.get(successor.state.remote())[1] == newest)
