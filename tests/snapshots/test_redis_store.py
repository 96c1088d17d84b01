"""Redis-only behaviour against the real local server: TTLs, a down server, foreign keys, racing writers."""
from __future__ import annotations

import socket
import threading

import pytest

from snapshots import RedisSnapshotStore, SnapshotError, key
from snapshots.redis_store import COUNTER_PREFIX
from tests.snapshots.conftest import REDIS_URL


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ttl_is_set_on_the_history_and_counter_then_cleared(redis_harness, redis_client):
    k = redis_harness.key("feed", "binance")
    redis_harness.store.put(k, {"last_update_id": 42}, ttl_s=30)
    assert 25_000 < redis_harness.store.ttl_ms(k) <= 30_000
    assert 25_000 < redis_client.pttl(COUNTER_PREFIX + k) <= 30_000
    redis_harness.store.put(k, {"last_update_id": 43})  # durable again
    assert redis_harness.store.ttl_ms(k) is None and redis_client.pttl(COUNTER_PREFIX + k) == -1


def test_a_down_redis_becomes_a_snapshot_error_naming_server_and_key(closed_port):
    store = RedisSnapshotStore(f"redis://:hunter2@127.0.0.1:{closed_port}/0", timeout_s=0.5)
    k = key("run-x", "strategy", "BTC")
    for action in (lambda: store.put(k, {"x": 1}), lambda: store.get(k), lambda: store.delete(k)):
        with pytest.raises(SnapshotError, match=rf"redis redis://:\*\*\*@127.0.0.1:{closed_port}/0 "
                                                rf"unreachable during (put|get|delete) '{k}'") as err:
            action()
        assert "hunter2" not in str(err.value)
    with pytest.raises(SnapshotError, match="unreachable during keys 'arb:run-x:'"):
        store.keys("arb:run-x:")


def test_a_key_holding_something_else_is_refused_clearly(redis_harness, redis_client):
    k = redis_harness.key("strategy", "XRP")
    redis_client.set(k, "not a snapshot list")
    with pytest.raises(SnapshotError, match=rf"get '{k}' refused: WRONGTYPE"):
        redis_harness.store.get(k)


def test_racing_writers_never_share_a_version(redis_harness):
    k = redis_harness.key("coordinator", "main")
    got: list[int] = []

    def writer(name: str) -> None:
        store = RedisSnapshotStore(REDIS_URL)
        got.extend(store.put(k, {"by": name, "i": i}) for i in range(40))
        store.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 81))
    assert redis_harness.store.get(k).version == 80


def test_glob_characters_in_a_prefix_are_literal(redis_harness, redis_client):
    redis_harness.store.put(redis_harness.key("strategy", "BTC"), {"x": 1})
    assert redis_harness.store.keys(f"arb:{redis_harness.run_id}:*") == []
    assert redis_harness.store.keys(f"arb:{redis_harness.run_id}:str") == [redis_harness.key("strategy", "BTC")]
