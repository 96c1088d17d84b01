"""Both snapshot stores: versions, history, corrupt and stale detection, TTL, redaction, keys."""
from __future__ import annotations

import json
import logging

import pytest

from snapshots import InMemorySnapshotStore, SnapshotError

STATE = {"positions": {"p-1": {"qty": 0.0123, "direction": "upbit_rich"}}, "cooldown_until_ms": 5,
         "seen_fill_ids": ["f-1", "f-2"]}


def test_put_returns_monotonic_versions_and_get_returns_the_newest(harness):
    k = harness.key()
    versions = [harness.store.put(k, {**STATE, "step": i}) for i in range(3)]
    assert versions == [1, 2, 3]
    snap = harness.store.get(k)
    assert (snap.version, snap.payload["step"], snap.ts_ms, snap.ok) == (3, 2, harness.clock.now_ms, True)
    assert snap.payload["positions"] == STATE["positions"]


def test_only_the_last_five_versions_are_kept(harness):
    k = harness.key()
    for i in range(8):
        harness.store.put(k, {"step": i})
    kept = [json.loads(blob)["version"] for blob in harness.raw(k)]
    assert kept == [8, 7, 6, 5, 4]


def test_a_missing_key_is_none_not_an_empty_state(harness):
    assert harness.store.get(harness.key("coordinator", "main")) is None


def test_a_newest_version_with_a_bad_checksum_falls_back_and_is_reported(harness, caplog):
    k = harness.key()
    harness.store.put(k, {"step": 1})
    harness.store.put(k, {"step": 2})
    tampered = json.loads(harness.raw(k)[0])
    tampered["payload"]["step"] = 99
    harness.overwrite(k, 0, json.dumps(tampered).encode())
    with caplog.at_level(logging.WARNING, logger="snapshots.store"):
        snap = harness.store.get(k)
    assert (snap.version, snap.payload) == (1, {"step": 1})
    assert len(snap.problems) == 1 and "version 2 is corrupt: checksum mismatch" in snap.problems[0]
    assert f"snapshot {k}: version 2 is corrupt" in caplog.text and "returning version 1" in caplog.text


@pytest.mark.parametrize("damage,reason", [
    (lambda blob: blob[: len(blob) // 2], "truncated or unparsable"),
    (lambda blob: b"\xff\xfe not json", "truncated or unparsable"),
    (lambda blob: b'{"version": 2, "payload": {}}', "missing ['ts_ms', 'schema', 'sha256']"),
])
def test_truncated_or_unparsable_newest_versions_fall_back(harness, damage, reason):
    k = harness.key("feed", "upbit")
    harness.store.put(k, {"step": 1})
    harness.store.put(k, {"step": 2})
    harness.overwrite(k, 0, damage(harness.raw(k)[0]))
    snap = harness.store.get(k)
    assert snap.version == 1 and not snap.ok
    assert reason in snap.problems[0]


def test_only_corrupt_versions_raise_with_the_key_and_every_reason(harness):
    k = harness.key()
    for i in range(3):
        harness.store.put(k, {"step": i})
    for index in range(3):
        harness.overwrite(k, index, b'{"version": 1, "ts')
    with pytest.raises(SnapshotError, match=rf"snapshot {k}: none of the 3 kept versions is intact") as err:
        harness.store.get(k)
    assert str(err.value).count("truncated or unparsable") == 3


def test_a_corrupt_older_version_does_not_taint_a_good_newest(harness):
    k = harness.key()
    harness.store.put(k, {"step": 1})
    harness.store.put(k, {"step": 2})
    harness.overwrite(k, 1, b"garbage")
    snap = harness.store.get(k)
    assert (snap.version, snap.ok) == (2, True)


def test_a_stale_newest_version_is_returned_and_reported(harness, caplog):
    k = harness.key()
    harness.store.put(k, {"step": 1})
    harness.clock.now_ms += 30_000
    assert harness.store.get(k, max_age_ms=60_000).ok
    harness.clock.now_ms += 40_000
    with caplog.at_level(logging.WARNING):
        snap = harness.store.get(k, max_age_ms=60_000)
    assert snap.payload == {"step": 1}
    assert snap.problems == ("version 1 is stale: 70000 ms old > max 60000 ms",)
    assert "stale" in caplog.text and k in caplog.text


def test_delete_forgets_history_and_version(harness):
    k = harness.key()
    harness.store.put(k, {"step": 1})
    harness.store.put(k, {"step": 2})
    harness.store.delete(k)
    assert harness.store.get(k) is None
    assert harness.store.put(k, {"step": 3}) == 1


def test_keys_lists_one_run_by_prefix(harness):
    names = [harness.key("strategy", "BTC"), harness.key("strategy", "ETH"),
             harness.key("coordinator", "main")]
    for name in names:
        harness.store.put(name, {"x": 1})
    assert harness.store.keys(f"arb:{harness.run_id}:") == sorted(names)
    assert harness.store.keys(f"arb:{harness.run_id}:strategy:") == sorted(names[:2])
    assert harness.store.keys(f"arb:{harness.run_id}x") == []


def test_secrets_are_redacted_by_default_at_any_depth(harness):
    k = harness.key("executor", "live")
    harness.store.put(k, {"venue": {"api_key": "AKIA123", "apiSecret": "s3cr3t", "rate": 10},
                          "accounts": [{"password": "hunter2", "id": 7}]})
    payload = harness.store.get(k).payload
    assert payload == {"venue": {"api_key": "***", "apiSecret": "***", "rate": 10},
                       "accounts": [{"password": "***", "id": 7}]}
    assert not any(b"AKIA123" in blob or b"hunter2" in blob for blob in harness.raw(k))


def test_a_caller_redaction_hook_replaces_the_default():
    seen = []

    def drop_account(payload):
        seen.append(payload)
        return {k: v for k, v in payload.items() if k != "account"}

    store = InMemorySnapshotStore(redact=drop_account)
    store.put("arb:r:x:y", {"account": "uid-9", "qty": 1})
    assert store.get("arb:r:x:y").payload == {"qty": 1} and len(seen) == 1


def test_a_payload_that_is_not_json_is_refused_naming_the_key(harness):
    k = harness.key()
    with pytest.raises(SnapshotError, match=rf"snapshot {k}: payload is not JSON-safe"):
        harness.store.put(k, {"qty": float("nan")})
    with pytest.raises(SnapshotError, match=rf"snapshot {k}: payload must be a dict"):
        harness.store.put(k, [1, 2])
    assert harness.store.get(k) is None  # nothing half-written


def test_schema_travels_with_the_snapshot(harness):
    k = harness.key()
    harness.store.put(k, {"x": 1}, schema="strategy-v3")
    assert harness.store.get(k).schema == "strategy-v3"


def test_in_memory_ttl_expires_with_the_clock(memory_harness):
    harness = memory_harness
    k = harness.key("feed", "upbit")
    harness.store.put(k, {"x": 1}, ttl_s=10)
    harness.clock.now_ms += 9_999
    assert harness.store.get(k).version == 1 and harness.store.ttl_ms(k) == 1
    harness.clock.now_ms += 1
    assert harness.store.get(k) is None and harness.store.keys("arb:") == []
    assert harness.store.put(k, {"x": 2}) == 1
