"""One process per live run, on real Redis: a second taker of a run's lease is refused naming the
holder; the holder keeps it past its TTL by refreshing; it is free once given back or lapsed; a
holder whose lease was taken from it knows."""
from __future__ import annotations

import time
import uuid

import pytest
import redis

from live.lease import LeaseHeld, RunLease, lease_key

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def run_id():
    rid = f"lease-test-{uuid.uuid4().hex[:8]}"
    yield rid
    redis.Redis.from_url(REDIS).delete(lease_key(rid))


def test_a_second_process_is_refused_while_the_first_holds_and_refreshes_the_lease(run_id):
    first = RunLease(REDIS, run_id, ttl_s=0.6)
    first.acquire()
    try:
        time.sleep(1.5)                          # over two TTLs: only the refresh keeps it
        with pytest.raises(LeaseHeld, match=rf"live run {run_id} is held by {first.holder}"):
            RunLease(REDIS, run_id, ttl_s=0.6).acquire()
        assert not first.lost.is_set()
    finally:
        first.release()
    second = RunLease(REDIS, run_id, ttl_s=0.6)
    second.acquire()                             # given back: free at once
    second.release()


def test_a_dead_holders_lease_lapses_and_a_resume_may_take_it(run_id):
    crashed = RunLease(REDIS, run_id, ttl_s=0.5)
    assert crashed.client.set(crashed.key, crashed.holder, nx=True, px=500)   # taken, never refreshed
    with pytest.raises(LeaseHeld):
        RunLease(REDIS, run_id, ttl_s=0.5).acquire()
    time.sleep(0.7)
    resumed = RunLease(REDIS, run_id, ttl_s=0.5)
    resumed.acquire()
    resumed.release()


def test_a_holder_whose_lease_was_taken_knows_it_and_does_not_free_the_new_holders(run_id):
    first = RunLease(REDIS, run_id, ttl_s=0.6)
    first.acquire()
    r = redis.Redis.from_url(REDIS)
    r.set(lease_key(run_id), "someone-else", px=5000)      # Redis lost it and another process took it
    assert first.lost.wait(2.0)
    first.release()
    assert r.get(lease_key(run_id)) == b"someone-else"


def test_a_lease_needs_a_positive_ttl():
    with pytest.raises(ValueError, match="ttl_s 0 must be > 0"):
        RunLease(REDIS, "x", ttl_s=0)
