"""Fixtures of the actor tests that persist to the real Redis (127.0.0.1:6379): one run id per test,
its snapshot keys dropped afterwards."""
from __future__ import annotations

import uuid
from typing import Iterator

import pytest
import redis

from actors.persistence import Persist

REDIS_URL = "redis://127.0.0.1:6379/0"


def drop_run_keys(run_id: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    for name in client.scan_iter(match=f"*arb:{run_id}:*"):
        client.delete(name)
    client.close()


@pytest.fixture
def run_id(request) -> Iterator[str]:
    """A fresh run id named after the test module (chaos-1a2b3c4d, resync-...)."""
    rid = f"{request.module.__name__.rsplit('.', 1)[-1].removeprefix('test_').replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    yield rid
    drop_run_keys(rid)


@pytest.fixture
def persist(run_id: str) -> Persist:
    return Persist(REDIS_URL, run_id)
