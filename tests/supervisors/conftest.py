"""Supervision fixtures: a unique run id whose snapshot keys are removed from the real Redis afterwards."""
from __future__ import annotations

import uuid

import pytest
import redis

from snapshots.redis_store import COUNTER_PREFIX
from tests.snapshots.conftest import REDIS_URL


@pytest.fixture
def run_id():
    """A fresh run id; its arb:{run}:* keys and their version counters are deleted after the test."""
    rid = f"sup-{uuid.uuid4().hex[:10]}"
    yield rid
    client = redis.Redis.from_url(REDIS_URL)
    for pattern in (f"arb:{rid}:*", f"{COUNTER_PREFIX}arb:{rid}:*"):
        for name in client.scan_iter(match=pattern):
            client.delete(name)
    client.close()


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()
