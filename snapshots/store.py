"""The snapshot-store interface: versioned, checksummed put/get/delete/keys with one error type.

A backend stores, per key, the last `keep` envelopes newest first plus a version counter; this
base class does the rest, so the Redis and in-memory stores behave identically: `get` verifies
every kept version, returns the newest intact one, and reports (warning log + `problems`) any
newer version it had to skip and a result older than the caller's `max_age_ms`. When versions
exist but none is intact it raises SnapshotError instead of handing back an empty state.
"""
from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

from snapshots import envelope
from snapshots.redaction import Redactor, redact_secrets

log = logging.getLogger(__name__)

DEFAULT_KEEP = 5


class SnapshotError(Exception):
    """A snapshot could not be stored or no intact one could be read; the message names the key."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One intact stored version, with any problem met on the way to it (skipped versions, staleness)."""

    key: str
    version: int
    ts_ms: int
    schema: int | str
    payload: dict[str, Any]
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class SnapshotStore(ABC):
    """put/get/delete/keys over a backend's raw envelope lists."""

    def __init__(self, keep: int = DEFAULT_KEEP, redact: Redactor | None = redact_secrets,
                 clock_ms: Callable[[], int] = wall_clock_ms) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.keep = keep
        self._redact = redact
        self._clock_ms = clock_ms

    def put(self, key: str, payload: dict[str, Any], *, schema: int | str = 1,
            ttl_s: float | None = None) -> int:
        """Store a new version of `key` (redacted first) and return its version number.

        `ttl_s` makes the key disposable: it and its history expire after that many seconds
        (refreshed by every put); None keeps it until deleted.
        """
        if not isinstance(payload, dict):
            raise SnapshotError(f"snapshot {key}: payload must be a dict, got {type(payload).__name__}")
        if ttl_s is not None and ttl_s <= 0:
            raise SnapshotError(f"snapshot {key}: ttl_s must be > 0, got {ttl_s}")
        clean = self._redact(payload) if self._redact else payload
        try:    # encoded before a version is taken, so a payload that is not JSON-safe uses none
            blob = envelope.encode(0, self._clock_ms(), schema, clean)
        except (TypeError, ValueError) as error:
            raise SnapshotError(f"snapshot {key}: payload is not JSON-safe ({error})") from error
        version = self._next_version(key, ttl_s)
        self._push(key, envelope.with_version(blob, version), ttl_s)
        return version

    def get(self, key: str, max_age_ms: int | None = None) -> Snapshot | None:
        """The newest intact version of `key`; None when the key holds nothing at all."""
        blobs = self._entries(key)
        if not blobs:
            return None
        intact: list[tuple[int, dict[str, Any]]] = []
        corrupt: list[tuple[int, int | None, str]] = []
        for position, blob in enumerate(blobs):
            try:
                intact.append((position, envelope.decode(blob)))
            except envelope.CorruptEnvelope as error:
                hint = envelope.version_hint(blob)
                label = _label(hint, position, len(blobs))
                corrupt.append((position, hint, f"{label} is corrupt: {error}"))
        if not intact:
            raise SnapshotError(f"snapshot {key}: none of the {len(blobs)} kept versions is intact: "
                                + "; ".join(reason for _, _, reason in corrupt))
        best_at, best = max(intact, key=lambda item: item[1]["version"])
        # Report what was skipped to reach `best`: versions above it, or unnumbered entries before it.
        problems = [reason for position, hint, reason in corrupt
                    if (hint > best["version"] if hint is not None else position < best_at)]
        age = self._clock_ms() - best["ts_ms"]
        if max_age_ms is not None and age > max_age_ms:
            problems.append(f"version {best['version']} is stale: {age} ms old > max {max_age_ms} ms")
        for problem in problems:
            log.warning("snapshot %s: %s; returning version %d", key, problem, best["version"])
        return Snapshot(key, best["version"], best["ts_ms"], best["schema"], best["payload"],
                        tuple(problems))

    def delete(self, key: str) -> None:
        """Forget `key`, its history and its version counter (a later put starts again at 1)."""
        self._delete(key)

    def keys(self, prefix: str = "") -> list[str]:
        """Every stored key that starts with `prefix`, sorted."""
        return sorted(self._keys(prefix))

    @abstractmethod
    def _next_version(self, key: str, ttl_s: float | None) -> int: ...

    @abstractmethod
    def _push(self, key: str, blob: bytes, ttl_s: float | None) -> None:
        """Prepend `blob`, keep the newest `self.keep`, apply (or clear) the TTL."""

    @abstractmethod
    def _entries(self, key: str) -> list[bytes]:
        """The kept envelopes of `key`, newest first."""

    @abstractmethod
    def _delete(self, key: str) -> None: ...

    @abstractmethod
    def _keys(self, prefix: str) -> list[str]: ...


def _label(version: int | None, position: int, count: int) -> str:
    if version is not None:
        return f"version {version}"
    return f"entry {position + 1} of {count} (newest first, version unreadable)"
