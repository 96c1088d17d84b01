"""What `main.py live --resume RUN_ID` reads before it trades: the run's snapshot in the real Redis. A missing,
foreign, incomplete or unreadable one refuses the resume with the key and the field named; a good one
restores into a fresh desk exactly as it was written."""
from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from domain.orders import Direction, OrderIntent, Purpose
from domain.venues import Venue
from live.desk import LiveDesk
from live.resume import ResumeRefused, export_run, mark_awaiting, read_run_snapshot, restore_desk, resumed_intent
from live.run import run_live
from snapshots.keys import key
from snapshots.redis_store import RedisSnapshotStore
from tests.live.live_runs import armed_env, run_profile, secrets_file, start_sim
from tests.live.test_live_run import FAST

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def sim():
    thread = start_sim()
    yield thread
    thread.stop()


@pytest.fixture
def profile(sim, tmp_path: Path):
    return run_profile(sim, tmp_path)


@pytest.fixture
def run_id(profile):
    """A run id of the profile whose snapshot key is dropped after the test."""
    rid = f"{profile.name}-{uuid.uuid4().hex[:12]}Z"
    yield rid
    store = RedisSnapshotStore(REDIS)
    store.delete(key(rid, "coordinator", "main"))
    store.close()


def desk_of(profile) -> LiveDesk:
    """A desk as LiveDesk.open builds it, without venue clients (nothing here sends an order)."""
    params = profile.to_domain()
    return LiveDesk([s.base for s in profile.symbols()], params.strategy, params.risk, params.market, params.fx,
                    {("upbit", "KRW"): 2_000_000.0, ("binance", "USDT"): 1_500.0},
                    venues={Venue.UPBIT: None, Venue.BINANCE: None})


def put(run_id: str, payload: dict) -> int:
    store = RedisSnapshotStore(REDIS)
    try:
        return store.put(key(run_id, "coordinator", "main"), payload)
    finally:
        store.close()


def test_no_snapshot_refuses_the_resume_naming_the_key_before_any_connection(sim, profile, run_id, tmp_path):
    requests = dict(sim.server.requests)
    with pytest.raises(ResumeRefused, match=f"no snapshot at arb:{run_id}:coordinator:main in {REDIS}"):
        run_live(profile, 5, env=armed_env(secrets_file(tmp_path)), options=FAST, resume=run_id)
    assert sim.server.requests == requests, "not one request reached a venue"
    assert not (tmp_path / "runs").exists(), "no run directory was made"


def test_a_snapshot_of_another_profile_is_refused(profile, run_id):
    doc = export_run(desk_of(profile), "live-example", 1_700_000_000_000, 0, {})
    version = put(run_id, doc)
    with pytest.raises(ResumeRefused) as err:
        read_run_snapshot(REDIS, run_id, profile)
    assert str(err.value) == (f"resume {run_id}: snapshot arb:{run_id}:coordinator:main version {version}: field "
                              f"'profile' is 'live-example', but this start runs profile {profile.name!r}")


@pytest.mark.parametrize("field", ["sent", "desk", "fee_shift"])
def test_a_snapshot_without_a_field_is_refused_naming_it(profile, run_id, field):
    doc = export_run(desk_of(profile), profile.name, 1_700_000_000_000, 0, {})
    del doc[field]
    put(run_id, doc)
    with pytest.raises(ResumeRefused, match=f"arb:{run_id}:coordinator:main version 1: field '{field}' missing"):
        read_run_snapshot(REDIS, run_id, profile)


def test_an_unreadable_desk_is_refused_naming_key_field_and_where(profile, run_id):
    doc = export_run(desk_of(profile), profile.name, 1_700_000_000_000, 0, {})
    doc["desk"]["portfolio"]["ledger"] = "not a ledger"
    put(run_id, doc)
    with pytest.raises(ResumeRefused) as err:
        read_run_snapshot(REDIS, run_id, profile)
    text = str(err.value)
    assert f"snapshot arb:{run_id}:coordinator:main version 1: field 'desk' cannot be restored" in text
    assert "portfolio.ledger: malformed" in text


def test_a_sent_order_the_desk_does_not_hold_is_refused(profile, run_id):
    doc = export_run(desk_of(profile), profile.name, 1_700_000_000_000, 0, {})
    doc["sent"] = {"BTC-p9-entry-upbit-1": "deadbeef-BTC-p9-entry-upbit-1"}
    put(run_id, doc)
    with pytest.raises(ResumeRefused, match=r"field 'sent': orders \['BTC-p9-entry-upbit-1'\] are not in"):
        read_run_snapshot(REDIS, run_id, profile)


def test_corrupt_versions_only_are_refused_naming_the_key(profile, run_id):
    client = redis.Redis.from_url(REDIS)
    client.lpush(key(run_id, "coordinator", "main"), b"not an envelope")
    client.close()
    with pytest.raises(ResumeRefused, match=f"cannot read arb:{run_id}:coordinator:main in {REDIS}: .*intact"):
        read_run_snapshot(REDIS, run_id, profile)


def test_a_snapshot_restores_into_a_fresh_desk_as_written(profile, run_id):
    desk = desk_of(profile)
    desk.fee_shift[("binance", "BTC")] = Decimal("-0.00000070")   # coin Binance kept as a buy fee
    doc = export_run(desk, profile.name, 1_700_000_000_000, 2, {})
    put(run_id, doc)
    snap = read_run_snapshot(REDIS, run_id, profile)
    assert (snap.started_ms, snap.resumes) == (1_700_000_000_000, 2)
    fresh = desk_of(profile)
    summary = restore_desk(fresh, snap)
    assert summary["resumes"] == 3 and summary["open_positions"] == [] and fresh.resumed is summary
    assert export_run(fresh, profile.name, snap.started_ms, snap.resumes, {}) == doc
    assert mark_awaiting(fresh) == []


def test_a_resumed_runs_entries_are_named_apart_exits_are_not():
    entry = OrderIntent("BTC-p1-entry", "BTC", 0, Purpose.ENTRY, Direction.RICH, 1.0, 0.01, "test", "BTC-p1")
    exit_ = OrderIntent("BTC-p1.r1-exit", "BTC", 0, Purpose.EXIT, Direction.RICH, 1.0, 0.0, "test", "BTC-p1.r1")
    assert resumed_intent(entry, 0) is entry and resumed_intent(exit_, 2) is exit_
    renamed = resumed_intent(entry, 2)
    assert (renamed.intent_id, renamed.position_id) == ("BTC-p1-entry.r2", "BTC-p1.r2")
