"""RedisSnapshotStore: snapshots in Redis, a list of the last N envelopes per key plus a counter.

Layout: the key itself (see snapshots.keys) holds a Redis list of envelopes, newest first,
trimmed to `keep`; `snapver:{key}` holds the INCR counter that numbers versions, so versions
stay monotonic even when two writers race. Every Redis failure becomes a SnapshotError naming
the server (password hidden), the operation and the key.
"""
from __future__ import annotations

import re
from typing import Callable, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis

from snapshots.redaction import Redactor, redact_secrets
from snapshots.store import DEFAULT_KEEP, SnapshotError, SnapshotStore, wall_clock_ms

COUNTER_PREFIX = "snapver:"
T = TypeVar("T")


class RedisSnapshotStore(SnapshotStore):
    """The snapshot store on a Redis server (default the local one)."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", keep: int = DEFAULT_KEEP,
                 redact: Redactor | None = redact_secrets,
                 clock_ms: Callable[[], int] = wall_clock_ms, timeout_s: float = 2.0) -> None:
        super().__init__(keep, redact, clock_ms)
        self.where = _hide_password(url)
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=timeout_s,
                                           socket_timeout=timeout_s)

    def _call(self, op: str, key: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except redis.ResponseError as error:
            raise SnapshotError(f"redis {self.where}: {op} {key!r} refused: {error}") from error
        except redis.RedisError as error:
            raise SnapshotError(f"redis {self.where} unreachable during {op} {key!r}: {error}") from error

    def _next_version(self, key: str, ttl_s: float | None) -> int:
        return int(self._call("put", key, lambda: self._redis.incr(COUNTER_PREFIX + key)))

    def _push(self, key: str, blob: bytes, ttl_s: float | None) -> None:
        def push() -> None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.lpush(key, blob)
            pipe.ltrim(key, 0, self.keep - 1)
            for name in (key, COUNTER_PREFIX + key):
                if ttl_s is None:
                    pipe.persist(name)
                else:
                    pipe.pexpire(name, int(ttl_s * 1000))
            pipe.execute()
        self._call("put", key, push)

    def _entries(self, key: str) -> list[bytes]:
        return self._call("get", key, lambda: self._redis.lrange(key, 0, -1))

    def _delete(self, key: str) -> None:
        self._call("delete", key, lambda: self._redis.delete(key, COUNTER_PREFIX + key))

    def _keys(self, prefix: str) -> list[str]:
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"
        names = self._call("keys", prefix, lambda: list(self._redis.scan_iter(match=pattern, count=500)))
        return [n.decode() for n in names if not n.startswith(COUNTER_PREFIX.encode())]

    def ttl_ms(self, key: str) -> int | None:
        """Milliseconds until `key` expires, None when it has no TTL (or does not exist)."""
        left = self._call("ttl", key, lambda: self._redis.pttl(key))
        return None if left < 0 else int(left)

    def close(self) -> None:
        self._redis.close()


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
