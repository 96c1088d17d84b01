"""InMemorySnapshotStore: the snapshot store in a dict, for unit tests of actor logic."""
from __future__ import annotations

import threading
from typing import Callable

from snapshots.redaction import Redactor, redact_secrets
from snapshots.store import DEFAULT_KEEP, SnapshotStore, wall_clock_ms


class InMemorySnapshotStore(SnapshotStore):
    """Same behaviour as the Redis store. Pass `backing` to inspect or damage the raw envelopes."""

    def __init__(self, keep: int = DEFAULT_KEEP, redact: Redactor | None = redact_secrets,
                 clock_ms: Callable[[], int] = wall_clock_ms,
                 backing: dict[str, list[bytes]] | None = None) -> None:
        super().__init__(keep, redact, clock_ms)
        self.backing = backing if backing is not None else {}
        self._versions: dict[str, int] = {}
        self._expires_ms: dict[str, int] = {}
        self._lock = threading.Lock()

    def _expire(self, key: str) -> None:
        deadline = self._expires_ms.get(key)
        if deadline is not None and self._clock_ms() >= deadline:
            self.backing.pop(key, None)
            self._versions.pop(key, None)
            self._expires_ms.pop(key, None)

    def _next_version(self, key: str, ttl_s: float | None) -> int:
        with self._lock:
            self._expire(key)
            self._versions[key] = self._versions.get(key, 0) + 1
            return self._versions[key]

    def _push(self, key: str, blob: bytes, ttl_s: float | None) -> None:
        with self._lock:
            self.backing[key] = [blob, *self.backing.get(key, [])][: self.keep]
            if ttl_s is None:
                self._expires_ms.pop(key, None)
            else:
                self._expires_ms[key] = self._clock_ms() + int(ttl_s * 1000)

    def _entries(self, key: str) -> list[bytes]:
        with self._lock:
            self._expire(key)
            return list(self.backing.get(key, []))

    def _delete(self, key: str) -> None:
        with self._lock:
            for table in (self.backing, self._versions, self._expires_ms):
                table.pop(key, None)

    def _keys(self, prefix: str) -> list[str]:
        with self._lock:
            for name in list(self.backing):
                self._expire(name)
            return [name for name in self.backing if name.startswith(prefix)]

    def ttl_ms(self, key: str) -> int | None:
        """Milliseconds until `key` expires, None when it has no TTL."""
        deadline = self._expires_ms.get(key)
        return None if deadline is None else deadline - self._clock_ms()

