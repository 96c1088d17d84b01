"""Lockstep paper replay: the real actors, ccxt.pro and simulator, one book instant at a time.

Real-time paper on the simulator depends on thread timing (two feeds, Ray hops, the flush timer), so
two runs never quite agree. Here the driver publishes one instant on the simulator, waits until the
feeds have received it through their WebSockets, flushes them (coordinator first, as the engine fills
before it decides), and waits until every intent and every piece of news has been answered. The same
stream then gives the same decisions as the in-process backtest, and a run with chaos can be compared
with one without it.
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import groupby

import ray

from domain.book import Book
from paper.graph import ActorGraph

FEED_TIMEOUT_S = 20.0


class LockstepStalled(RuntimeError):
    """A feed never received a published book, or the actors never went quiet; names which."""


@dataclass
class LockstepStats:
    instants: int = 0
    books: int = 0
    wall_s: float = 0.0
    per_instant_ms: list[float] = field(default_factory=list)


def instants(books: list[Book]) -> list[tuple[int, list[Book]]]:
    """The stream cut into instants (books sharing a timestamp), in time order."""
    ordered = sorted(books, key=lambda b: b.ts_ms)
    return [(ts, list(group)) for ts, group in groupby(ordered, key=lambda b: b.ts_ms)]


def wait_received(actors: ActorGraph, group: list[Book], timeout_s: float = FEED_TIMEOUT_S) -> None:
    """Until each feed has received, for every book of the instant, a book of that coin at least as new."""
    want: dict[str, dict[str, int]] = defaultdict(dict)
    for book in group:
        want[book.venue][book.symbol] = book.ts_ms
    deadline = time.monotonic() + timeout_s
    while want:
        venues = list(want)
        seen = ray.get([actors.feeds[v].seen.remote() for v in venues])
        for venue, got in zip(venues, seen):
            if all(got.get(coin, -1) >= ts for coin, ts in want[venue].items()):
                del want[venue]
        if want and time.monotonic() > deadline:
            raise LockstepStalled(f"lockstep: feeds never received {dict(want)} within {timeout_s}s")
        if want:
            time.sleep(0.001)


def wait_quiet(actors: ActorGraph, timeout_s: float = FEED_TIMEOUT_S) -> None:
    """Until every intent sent has been handled by the coordinator and every news it sent by a strategy."""
    deadline = time.monotonic() + timeout_s
    while True:
        shards = ray.get([h.counters.remote() for h, _ in actors.strategies])
        coord = ray.get(actors.coordinator.counters.remote())
        again = ray.get([h.counters.remote() for h, _ in actors.strategies])
        sent = sum(s["submits_sent"] for s in again)
        if (shards == again and coord["submits_handled"] == sent
                and coord["news_sent"] == sum(s["news_handled"] for s in again)):
            return
        if time.monotonic() > deadline:
            raise LockstepStalled(f"lockstep: actors not quiet after {timeout_s}s: coordinator {coord}, "
                                  f"strategies {again}")
        time.sleep(0.001)


def flush(actors: ActorGraph, phase: int) -> None:
    """Send the feeds' held books to the coordinator (phase 0) or the strategies (phase 1); wait for them."""
    refs = ray.get([f.flush_phase.remote(phase) for f in actors.feeds.values()])
    ray.get([r for rs in refs for r in rs])


def step(actors: ActorGraph, ts: int) -> None:
    """One instant, in the engine's order: books in, orders due fill, strategies hear, then decide."""
    flush(actors, 0)
    ray.get(actors.coordinator.close_instant.remote())
    wait_quiet(actors)
    flush(actors, 1)
    ray.get([h.close_instant.remote(ts) for h, _ in actors.strategies])
    wait_quiet(actors)
    ray.get(actors.coordinator.approve_instant.remote())
    wait_quiet(actors)


def prime(sim, books: list[Book]) -> None:
    """Before the feeds start: publish each market's first book, so every stream can subscribe at once.

    A Binance stream syncs from a REST snapshot, which carries no venue time (as on the real spot API),
    so the first instant would otherwise reach the feed without a timestamp and never be forwarded.
    """
    firsts: dict[tuple[str, str], Book] = {}
    for book in sorted(books, key=lambda b: b.ts_ms):
        firsts.setdefault((book.venue, book.symbol), book)
    for book in firsts.values():
        sim.publish(book)


def wait_subscribed(actors: ActorGraph, books: list[Book], timeout_s: float = FEED_TIMEOUT_S) -> None:
    """Until every feed has heard from every coin; then the feeds forget the priming books."""
    want = {v: {b.symbol for b in books if b.venue == v} for v in actors.feeds}
    deadline = time.monotonic() + timeout_s
    while True:
        heard = dict(zip(want, ray.get([actors.feeds[v].subscribed.remote() for v in want])))
        missing = {v: sorted(coins - set(heard[v])) for v, coins in want.items() if coins - set(heard[v])}
        if not missing:
            break
        if time.monotonic() > deadline:
            raise LockstepStalled(f"lockstep: streams never subscribed for {missing} within {timeout_s}s")
        time.sleep(0.02)
    ray.get([f.reset.remote() for f in actors.feeds.values()])


def replay(sim, actors: ActorGraph, books: list[Book]) -> LockstepStats:
    """Publish `books` instant by instant through the simulator and let the actors finish each one
    (call prime() before the feeds start)."""
    wait_subscribed(actors, books)
    stats = LockstepStats()
    started = time.perf_counter()
    for ts, group in instants(books):
        t0 = time.perf_counter()
        sim.advance_to(ts)   # re-publishes the priming books at their own instants
        wait_received(actors, group)
        step(actors, ts)
        stats.instants += 1
        stats.books += len(group)
        stats.per_instant_ms.append((time.perf_counter() - t0) * 1000)
    stats.wall_s = time.perf_counter() - started
    return stats
