"""Versioned, checksummed actor snapshots behind a small put/get/delete/keys interface."""
from snapshots.keys import key, parse_key, prefix
from snapshots.memory import InMemorySnapshotStore
from snapshots.redaction import redact_secrets
from snapshots.redis_store import RedisSnapshotStore
from snapshots.store import Snapshot, SnapshotError, SnapshotStore

__all__ = ["InMemorySnapshotStore", "RedisSnapshotStore", "Snapshot", "SnapshotError",
           "SnapshotStore", "key", "parse_key", "prefix", "redact_secrets"]
