"""How an actor of a run gets its Snapshotter: one Redis key per actor (snapshots.keys), restored in
the constructor. `Persist` is what graph.start hands every stateful actor: the Redis URL and run id,
and how many times this actor has been restarted (a restart must find a snapshot, never start empty).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from snapshots.keys import key
from snapshots.redis_store import RedisSnapshotStore
from supervisors.snapshotting import Snapshotter


@dataclass(frozen=True)
class Persist:
    redis_url: str
    run_id: str
    restarts: int = 0

    def restarted(self, restarts: int) -> "Persist":
        return replace(self, restarts=restarts)


def snapshotter(persist: Persist | None, kind: str, actor_id: str, export: Callable[[], dict],
                load: Callable[[dict], Any]) -> Snapshotter | None:
    """The actor's Snapshotter, after restoring its state (required on a restart); None without Persist."""
    if persist is None:
        return None
    snap = Snapshotter(RedisSnapshotStore(persist.redis_url), key(persist.run_id, kind, actor_id), export)
    if snap.restore(load, required=persist.restarts > 0) is None:
        snap.changed(urgent=True)   # a first start is stored at once: a crash before any change can restart
    return snap
