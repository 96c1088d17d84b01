"""One process per live run: a Redis lease (`arb:{run_id}:lease`) taken before a live start or resume
touches a venue, kept while the run trades, given back when it ends.

Two processes trading one run id (a resume started while the crashed-looking run still lives) would
each send orders for the same desk. The lease is SET NX with a TTL, refreshed every ttl/3 by its
holder; a dead holder's lease lapses after the TTL, and then a resume may take it. A holder that
finds its lease gone or taken (Redis lost it, or was down longer than the TTL) stops trading.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

import redis

log = logging.getLogger("live.lease")
# Only the holder may extend or delete its lease (compare and act in one step).
_REFRESH = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class LeaseHeld(RuntimeError):
    """Another process holds the run's lease: it is (or was, until its TTL lapses) trading this run."""


def lease_key(run_id: str) -> str:
    return f"arb:{run_id}:lease"


class RunLease:
    """`acquire` it before the run touches a venue, `release` it when the run's results are written;
    `lost` is set if it lapsed or was taken meanwhile. `ttl_s`: live.lease_ttl_s of the profile."""

    def __init__(self, redis_url: str, run_id: str, ttl_s: float):
        if ttl_s <= 0:
            raise ValueError(f"lease of {run_id}: ttl_s {ttl_s} must be > 0")
        self.client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.key, self.run_id, self.ttl_ms = lease_key(run_id), run_id, int(ttl_s * 1000)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lease or raise LeaseHeld naming the holder and when its lease lapses."""
        if self.client.set(self.key, self.holder, nx=True, px=self.ttl_ms):
            self._thread = threading.Thread(target=self._keep, name=f"lease-{self.run_id}", daemon=True)
            self._thread.start()
            return
        holder = self.client.get(self.key)
        left_ms = self.client.pttl(self.key)
        raise LeaseHeld(f"live run {self.run_id} is held by {holder.decode() if holder else 'a process'} "
                        f"(Redis key {self.key}, lapses in {max(left_ms, 0) / 1000:.0f} s): another process "
                        f"trades it. If that process is dead, start again once the lease has lapsed.")

    def _keep(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                kept = self.client.eval(_REFRESH, 1, self.key, self.holder, self.ttl_ms)
            except redis.RedisError as err:       # a short outage: the TTL covers it; keep trying
                log.warning("lease %s: refresh failed: %s", self.key, err)
                continue
            if not kept:
                log.error("lease %s: lost (expired or taken by another process); the run stops trading", self.key)
                self.lost.set()
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self.client.eval(_RELEASE, 1, self.key, self.holder)
        except redis.RedisError as err:           # it lapses on its own
            log.warning("lease %s: release failed (it lapses in its TTL): %s", self.key, err)
        self.client.close()
