"""TradeStore round trips every record type, re-records without duplicates, and refuses bad input."""
from __future__ import annotations

import dataclasses
import math

import pytest
from sqlalchemy import func, select

from domain.orders import Direction, Fill, Order, Purpose, RoundTrip, Side
from storage import TradeStore
from storage.tables import TABLES, fills as fills_table
from tests.storage import builders


@pytest.fixture
def store(db_url, tmp_path):
    with TradeStore(db_url, journal_path=tmp_path / "writes.jsonl") as s:
        yield s


def test_every_record_type_round_trips(store):
    store.start_run("run-a", "paper", "demo_top20", "sha256:abc", started_ms=1_700_000_000_000)
    orders = [builders.order(0), builders.order(1, venue="binance", side=Side.BUY, limit_price=97_100.5,
                                                purpose=Purpose.UNWIND)]
    fills = [builders.fill(0), builders.fill(1, qty=0.0, fee=0.0)]  # qty 0: a failed order
    trip = builders.round_trip(7, direction=Direction.RICH, pnl_krw=-5_000.0)
    for o in orders:
        store.record_order("run-a", o)
    for f in fills:
        store.record_fill("run-a", f)
    store.record_round_trip("run-a", trip)
    store.record_kpi_checkpoint("run-a", 1_700_000_060_000, {"round_trips": 0, "pnl_krw": 0.0})
    store.record_kpi_checkpoint("run-a", 1_700_000_120_000, {"round_trips": 1, "pnl_krw": -5000.0,
                                                             "exit_reasons": {"stop_loss": 1}})
    alert_id = store.record_alert("run-a", {"ts_ms": 1_700_000_000_500, "severity": "warning",
                                            "kind": "feed_stale", "message": "upbit book 6 s old"})
    decision = store.record_guard_decision("run-a", 1_700_000_000_400, "BTC", "cooldown", "symbol",
                                           False, "exit 20 s ago < 60 s")
    store.end_run("run-a", "completed", 0, ended_ms=1_700_000_200_000)
    assert store.flush(10)

    assert store.orders("run-a") == orders
    assert store.fills("run-a") == fills
    assert store.round_trips("run-a") == [trip]
    assert store.latest_kpi("run-a") == {"round_trips": 1, "pnl_krw": -5000.0,
                                         "exit_reasons": {"stop_loss": 1}}
    [alert] = store.alerts("run-a")
    assert alert["alert_id"] == alert_id and alert["kind"] == "feed_stale"
    [guard] = store.guard_decisions("run-a")
    assert (guard.decision_id, guard.guard, guard.tier, guard.allowed) == (decision, "cooldown",
                                                                           "symbol", False)
    run = store.run("run-a")
    assert (run.mode, run.profile, run.status, run.exit_code) == ("paper", "demo_top20", "completed", 0)
    assert run.duration_ms == 200_000
    assert store.run("no-such-run") is None and store.latest_kpi("no-such-run") is None


def test_rerecording_the_same_ids_adds_no_rows(store):
    store.start_run("run-b", "backtest", "p", "d")
    for _ in range(3):
        store.record_order("run-b", builders.order(0))
        store.record_fill("run-b", builders.fill(0))
        store.record_round_trip("run-b", builders.round_trip(0))
        store.record_kpi_checkpoint("run-b", 5, {"x": 1})
        store.record_alert("run-b", {"alert_id": "a-1", "message": "once"})
        store.record_guard_decision("run-b", 5, "BTC", "exposure", "global", True, decision_id="g-1")
        store.start_run("run-b", "backtest", "p", "d")
        store.end_run("run-b", "failed", 2, ended_ms=9)
    assert store.flush(10)
    assert len(store.orders("run-b")) == len(store.fills("run-b")) == 1
    assert len(store.round_trips("run-b")) == len(store.alerts("run-b")) == 1
    assert len(store.guard_decisions("run-b")) == 1
    assert store.run("run-b").status == "failed"  # start_run again did not reset it
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(fills_table)).scalar() == 1


def test_a_fill_id_seen_before_keeps_its_first_values(store):
    store.record_fill("run-c", builders.fill(0, price=100.0))
    store.record_fill("run-c", builders.fill(0, price=200.0))
    assert store.flush(10)
    assert [f.price for f in store.fills("run-c")] == [100.0]


def test_bad_input_is_refused_with_what_and_where(store):
    with pytest.raises(TypeError, match="fills: expected Fill, got Order"):
        store.record_fill("run-d", builders.order(0))
    with pytest.raises(ValueError, match="Fill f-3: field price is nan"):
        store.record_fill("run-d", builders.fill(3, price=math.nan))
    with pytest.raises(ValueError, match="kpi checkpoint run-d@5: not JSON-safe"):
        store.record_kpi_checkpoint("run-d", 5, {"roi": math.inf})
    with pytest.raises(ValueError, match="mode 'sim' not one of"):
        store.start_run("run-d", "sim", "p", "d")
    with pytest.raises(ValueError, match="run_id must be a non-empty string"):
        store.record_fill("", builders.fill(0))
    assert store.backlog() == 0


def test_default_journal_sits_beside_the_sqlite_file(tmp_path):
    with TradeStore(f"sqlite:///{tmp_path / 'deep' / 'a.db'}") as s:
        assert s.journal_path == tmp_path / "deep" / "a.db.journal"
        s.record_fill("r", builders.fill(0))
        assert s.flush(5)
        assert s.journal_path.stat().st_size == 0  # emptied once everything is committed


def test_in_memory_sqlite_works_without_a_journal():
    with TradeStore("sqlite://") as s:
        s.record_fill("r", builders.fill(1))
        assert s.flush(5) and s.journal_path is None
        assert s.fills("r") == [builders.fill(1)]


def test_unsupported_database_is_refused():
    from storage import StorageError
    with pytest.raises(StorageError, match="only sqlite and postgresql"):
        TradeStore("mysql://root@127.0.0.1/test", journal=False)


@pytest.mark.parametrize("cls,table", [(Order, "orders"), (Fill, "fills"), (RoundTrip, "round_trips")])
def test_tables_mirror_every_field_of_the_domain_records(cls, table):
    columns = {c.name for c in TABLES[table].columns} - {"run_id"}
    assert columns == {f.name for f in dataclasses.fields(cls)}
