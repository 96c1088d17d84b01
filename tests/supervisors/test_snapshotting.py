"""Snapshotter on real Redis (and the in-memory store): throttled writes of a real engine's state,
counted failures through a Redis outage, and a restore that never starts empty by accident."""
from __future__ import annotations

import json
from functools import cache

import pytest

from domain.state import SCHEMA as ENGINE_SCHEMA, export_engine, restore_engine
from snapshots import InMemorySnapshotStore, RedisSnapshotStore, SnapshotError, key
from snapshots.envelope import canonical_json
from supervisors.snapshotting import Snapshotter
from tests.snapshots.conftest import REDIS_URL, Clock
from tests.supervisors.desk_actor import build_engine as build, desk_setup
from tests.support.tcp_proxy import TcpProxy


class Ticks:
    """A settable monotonic clock in seconds."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


setup = cache(desk_setup)   # computed on first use, not at collection


def build_engine():
    return build(setup()[0])


@pytest.fixture(scope="module")
def books():
    return setup()[1]


def fed(books, n: int):
    engine = build_engine()
    for book in books[:n]:
        engine.on_book(book)
    return engine


def test_changes_are_throttled_urgent_ones_written_at_once_and_tick_writes_what_is_due(books):
    engine, clock, store = build_engine(), Ticks(), InMemorySnapshotStore()
    k = key("run-t", "coordinator", "main")
    snap = Snapshotter(store, k, lambda: export_engine(engine), min_interval_s=0.5, clock=clock)
    for book in books[:50]:
        engine.on_book(book)
    assert snap.changed() and store.get(k).version == 1
    for book in books[50:100]:
        engine.on_book(book)
    assert not snap.changed() and not snap.tick() and store.get(k).version == 1   # within 0.5 s
    clock.now += 0.5
    assert snap.tick() and store.get(k).payload == json.loads(canonical_json(export_engine(engine)))
    assert snap.changed(urgent=True) and store.get(k).version == 3
    assert snap.flush() and store.get(k).version == 3                                 # nothing new: no write
    assert snap.stats() | {"key": None} == {
        "key": None, "writes_ok": 3, "writes_failed": 0, "writes_throttled": 1, "success_rate_pct": 100.0,
        "last_version": 3, "last_error": "", "dirty": False, "restored_version": None, "restore_problems": [],
        "restore_ms": None}


def test_writes_through_a_redis_outage_are_counted_and_resume(books, run_id):
    engine = build_engine()
    with TcpProxy("127.0.0.1", 6379) as proxy:
        store = RedisSnapshotStore(f"redis://127.0.0.1:{proxy.port}/0", timeout_s=0.5)
        k = key(run_id, "coordinator", "main")
        snap = Snapshotter(store, k, lambda: export_engine(engine), min_interval_s=0)
        for i, chunk in enumerate(range(0, 600, 100)):
            for book in books[chunk:chunk + 100]:
                engine.on_book(book)
            if i == 2:
                proxy.cut()
            if i == 4:
                proxy.restore()
            snap.changed()
        store.close()
    stats = snap.stats()
    assert (stats["writes_ok"], stats["writes_failed"], stats["success_rate_pct"]) == (4, 2, 66.6667)
    assert "unreachable during put" in stats["last_error"] and stats["last_version"] == 4
    again = build_engine()
    Snapshotter(RedisSnapshotStore(REDIS_URL), k, lambda: {}).restore(lambda d: restore_engine(again, d))
    assert canonical_json(export_engine(again)) == canonical_json(export_engine(engine))


def test_restore_loads_the_newest_version_into_a_fresh_engine(books, run_id):
    store = RedisSnapshotStore(REDIS_URL)
    k = key(run_id, "coordinator", "main")
    engine = fed(books, 900)
    Snapshotter(store, k, lambda: export_engine(engine)).changed(urgent=True)
    fresh = build_engine()
    snap = Snapshotter(store, k, lambda: export_engine(fresh))
    got = snap.restore(lambda d: restore_engine(fresh, d), required=True)
    assert got.version == 1 and snap.stats()["restored_version"] == 1 and snap.problems == ()
    assert snap.stats()["restore_ms"] > 0
    assert canonical_json(export_engine(fresh)) == canonical_json(export_engine(engine))
    store.close()


def test_a_first_start_may_be_empty_but_a_restart_may_not(run_id):
    snap = Snapshotter(RedisSnapshotStore(REDIS_URL), key(run_id, "strategy", "BTC"), lambda: {})
    assert snap.restore(lambda d: pytest.fail("nothing to load")) is None
    with pytest.raises(SnapshotError, match=rf"snapshot arb:{run_id}:strategy:BTC: nothing stored, but this is "
                                            "a restart: refusing to start from an empty state"):
        snap.restore(lambda d: None, required=True)


def test_a_corrupt_newest_version_is_refused_and_the_previous_good_one_restored(books, run_id, redis_client):
    store = RedisSnapshotStore(REDIS_URL)
    k = key(run_id, "coordinator", "main")
    engine = build_engine()
    writer = Snapshotter(store, k, lambda: export_engine(engine), min_interval_s=0)
    good = None
    for n in (300, 600):
        for book in books[n - 300:n]:
            engine.on_book(book)
        writer.changed()
        good = good or canonical_json(export_engine(engine))
    newest = redis_client.lindex(k, 0)
    redis_client.lset(k, 0, newest.replace(b'"now":', b'"now":1', 1))    # a flipped digit: checksum no longer matches
    fresh = build_engine()
    reader = Snapshotter(store, k, lambda: {})
    assert reader.restore(lambda d: restore_engine(fresh, d), required=True).version == 1
    assert canonical_json(export_engine(fresh)) == good
    assert len(reader.problems) == 1 and reader.problems[0].startswith("version 2 is corrupt: checksum mismatch")
    redis_client.lset(k, 1, b'{"version": 1, "trunc')                     # now the older one is truncated too
    with pytest.raises(SnapshotError, match=rf"snapshot {k}: none of the 2 kept versions is intact: version 2 is "
                                            r"corrupt: checksum mismatch .*truncated or unparsable"):
        reader.restore(lambda d: None)
    store.close()


def test_a_version_the_actor_cannot_load_or_read_is_named(run_id):
    store, clock = InMemorySnapshotStore(clock_ms=Clock()), Ticks()
    k = key(run_id, "coordinator", "main")
    store.put(k, {"kind": "engine", "schema": ENGINE_SCHEMA, "hedge": "perp"})
    with pytest.raises(SnapshotError, match=rf"snapshot {k} version 1: cannot be restored: StateError: engine "
                                            r"state: missing \['symbols'"):
        Snapshotter(store, k, lambda: {}, clock=clock).restore(lambda d: restore_engine(build_engine(), d))
    with pytest.raises(SnapshotError, match=rf"snapshot {k} version 1: schema 1, this actor reads schema 2"):
        Snapshotter(store, k, lambda: {}, schema=2).restore(lambda d: None)


def test_a_stale_snapshot_is_loaded_and_its_age_reported(run_id):
    clock = Clock()
    store = InMemorySnapshotStore(clock_ms=clock)
    k = key(run_id, "strategy", "ETH")
    store.put(k, {"x": 1})
    clock.now_ms += 120_000
    loaded = []
    snap = Snapshotter(store, k, lambda: {})
    snap.restore(loaded.append, max_age_ms=60_000)
    assert loaded == [{"x": 1}] and snap.problems == ("version 1 is stale: 120000 ms old > max 60000 ms",)


def test_a_failing_export_is_counted_not_raised():
    def broken():
        raise ValueError("engine state: in-flight order X is not in portfolio.orders")
    snap = Snapshotter(InMemorySnapshotStore(), key("r", "coordinator", "main"), broken)
    assert not snap.changed(urgent=True)
    assert snap.stats()["writes_failed"] == 1 and "in-flight order X" in snap.stats()["last_error"]
    assert snap.dirty                                   # the next change retries
