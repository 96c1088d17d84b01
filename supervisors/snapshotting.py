"""Snapshotter: an actor's snapshot writer and restorer, one per stateful actor.

Restore in the constructor (a restart is a cold start with state), then tell it about every state
change that matters:

    self.snap = Snapshotter(store, key(run_id, "coordinator", "main"),
                            lambda: export_engine(self.desk, all_books=False, history=False))
    if self.snap.restore(lambda doc: restore_engine(self.desk, doc, news_type=News), required=restarts > 0) is None:
        self.snap.changed(urgent=True)     # first start: a crash before the first change is restorable too
    ...
    self.snap.changed(urgent=True)   # a fill, an order, a position: write now
    self.snap.changed()              # a window sample, a cooldown: write at most every min_interval_s
    self.snap.tick()                 # from a periodic loop: writes a throttled change that is still due

A write that fails (Redis down, state not JSON-safe) is logged and counted, never raised: the actor
keeps trading on its in-memory state and the next change retries. `stats()` gives the counters for
the KPI "snapshot success rate". Restoring never falls back to an empty state silently: a missing
snapshot on a restart, no intact version, or a version the actor cannot load is a SnapshotError
naming the key (and the version); a corrupt newer version skipped on the way is kept in `problems`.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from snapshots.store import Snapshot, SnapshotError, SnapshotStore

log = logging.getLogger("supervisors.snapshotting")


class Snapshotter:
    """Throttled, counted snapshot writes of one actor's state and its restore at construction."""

    def __init__(self, store: SnapshotStore, key: str, export: Callable[[], dict[str, Any]], *,
                 min_interval_s: float = 0.05, schema: int | str = 1, ttl_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if min_interval_s < 0:
            raise ValueError(f"snapshotter {key}: min_interval_s must be >= 0, got {min_interval_s}")
        self.store, self.key, self.export = store, key, export
        self.min_interval_s, self.schema, self.ttl_s = min_interval_s, schema, ttl_s
        self._clock = clock
        self._last_write = float("-inf")
        self.dirty = False
        self.ok = 0
        self.failed = 0
        self.throttled = 0
        self.last_version: int | None = None
        self.last_error = ""
        self.restored: Snapshot | None = None
        self.problems: tuple[str, ...] = ()
        self.restore_ms: float | None = None            # read, verify and load of the restored version

    # -- restore -------------------------------------------------------------------------------
    def restore(self, load: Callable[[dict[str, Any]], Any], *, required: bool = False,
                max_age_ms: int | None = None) -> Snapshot | None:
        """Load the newest intact snapshot through `load`; None on a first start with nothing stored.

        `required` (a restart): nothing stored is an error, not an empty start. A stale snapshot
        (older than `max_age_ms`) is still loaded, its age kept in `problems` and logged.
        """
        started = time.perf_counter()
        snap = self.store.get(self.key, max_age_ms)      # SnapshotError when no version is intact
        if snap is None:
            if required:
                raise SnapshotError(f"snapshot {self.key}: nothing stored, but this is a restart: "
                                    "refusing to start from an empty state")
            return None
        if snap.schema != self.schema:
            raise SnapshotError(f"snapshot {self.key} version {snap.version}: schema {snap.schema!r}, "
                                f"this actor reads schema {self.schema!r}")
        try:
            load(snap.payload)
        except Exception as error:
            raise SnapshotError(f"snapshot {self.key} version {snap.version}: cannot be restored: "
                                f"{type(error).__name__}: {error}") from error
        self.restored, self.problems, self.last_version = snap, snap.problems, snap.version
        self.restore_ms = round((time.perf_counter() - started) * 1000, 3)
        if snap.problems:
            log.warning("snapshot %s: restored version %d after: %s", self.key, snap.version,
                        "; ".join(snap.problems))
        return snap

    # -- write -------------------------------------------------------------------------------
    def changed(self, urgent: bool = False) -> bool:
        """Note a state change; write now if `urgent` or the interval has passed. True when written."""
        self.dirty = True
        if urgent or self._clock() - self._last_write >= self.min_interval_s:
            return self.flush()
        self.throttled += 1
        return False

    def tick(self) -> bool:
        """Write a throttled change once its interval has passed (call from a periodic loop)."""
        if self.dirty and self._clock() - self._last_write >= self.min_interval_s:
            return self.flush()
        return False

    def flush(self) -> bool:
        """Write the current state if it changed since the last good write. True when it is stored."""
        if not self.dirty:
            return True
        self._last_write = self._clock()   # a failure waits the interval too: no hammering a dead server
        try:
            self.last_version = self.store.put(self.key, self.export(), schema=self.schema, ttl_s=self.ttl_s)
        except Exception as error:  # noqa: BLE001 - counted and logged; trading goes on from memory
            self.failed += 1
            self.last_error = f"{type(error).__name__}: {error}"
            log.error("snapshot %s: write failed (%d so far): %s", self.key, self.failed, self.last_error)
            return False
        self.ok += 1
        self.dirty = False
        return True

    def stats(self) -> dict[str, Any]:
        """Counters for the KPI file and metrics: writes ok/failed, success rate, what was restored."""
        attempts = self.ok + self.failed
        return {"key": self.key, "writes_ok": self.ok, "writes_failed": self.failed,
                "writes_throttled": self.throttled,
                "success_rate_pct": round(self.ok / attempts * 100, 4) if attempts else None,
                "last_version": self.last_version, "last_error": self.last_error, "dirty": self.dirty,
                "restored_version": self.restored.version if self.restored else None,
                "restore_problems": list(self.problems), "restore_ms": self.restore_ms}
