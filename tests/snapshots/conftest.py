"""Snapshot fixtures: the same tests run on the in-memory store and on the real local Redis."""
from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterator

import pytest
import redis

from snapshots import InMemorySnapshotStore, RedisSnapshotStore, SnapshotStore, key
from snapshots.redis_store import COUNTER_PREFIX

REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Clock:
    """A settable wall clock in milliseconds, so staleness and TTLs are tested without sleeping."""

    now_ms: int = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now_ms


@dataclass
class Harness:
    """A store under test plus raw access to its stored envelopes (to damage them, like a bad disk)."""

    store: SnapshotStore
    clock: Clock
    run_id: str
    raw: Callable[[str], list[bytes]]
    overwrite: Callable[[str, int, bytes], None]
    made: list[str] = field(default_factory=list)

    def key(self, actor_kind: str = "strategy", actor_id: str = "BTC") -> str:
        return key(self.run_id, actor_kind, actor_id)


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def _memory_harness() -> Harness:
    clock, backing = Clock(), {}
    store = InMemorySnapshotStore(clock_ms=clock, backing=backing)

    def overwrite(name: str, index: int, blob: bytes) -> None:
        backing[name][index] = blob
    return Harness(store, clock, f"test-{uuid.uuid4().hex[:10]}",
                   lambda name: list(backing.get(name, [])), overwrite)


@contextlib.contextmanager
def _redis_harness(client: redis.Redis) -> Iterator[Harness]:
    clock, run_id = Clock(), f"test-{uuid.uuid4().hex[:10]}"
    store = RedisSnapshotStore(REDIS_URL, clock_ms=clock)
    try:
        yield Harness(store, clock, run_id, lambda name: client.lrange(name, 0, -1),
                      lambda name, index, blob: client.lset(name, index, blob))
    finally:
        store.close()
        for pattern in (f"arb:{run_id}:*", f"{COUNTER_PREFIX}arb:{run_id}:*"):
            for name in client.scan_iter(match=pattern):
                client.delete(name)


@pytest.fixture(params=["memory", "redis"])
def harness(request, redis_client) -> Iterator[Harness]:
    """The store-independent tests run once per backend."""
    if request.param == "memory":
        yield _memory_harness()
        return
    with _redis_harness(redis_client) as h:
        yield h


@pytest.fixture
def redis_harness(redis_client) -> Iterator[Harness]:
    with _redis_harness(redis_client) as h:
        yield h


@pytest.fixture
def memory_harness() -> Harness:
    return _memory_harness()
