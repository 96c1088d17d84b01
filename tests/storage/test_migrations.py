"""Schema 1 -> 2: record tables keyed by (run_id, id), so two runs that reuse ids both keep their rows."""
from __future__ import annotations

from sqlalchemy import (Column, Index, MetaData, PrimaryKeyConstraint, Table, create_engine, inspect,
                        select)

from storage import TradeStore
from storage.records import record_row
from storage.schema import SCHEMA_VERSION, database_version, ensure_schema
from storage.tables import RECORD_IDS, TABLES, metadata, schema_version
from tests.storage import builders


def version_1_metadata() -> MetaData:
    """The tables as schema version 1 created them: each record table keyed by its id alone."""
    old = MetaData()
    for table in metadata.tables.values():
        id_column = RECORD_IDS.get(table.name)
        if id_column is None:
            table.to_metadata(old)
            continue
        columns = [Column(c.name, c.type, nullable=c.nullable) for c in table.columns]
        indexes = [Index(i.name, *[c.name for c in i.columns]) for i in table.indexes]
        Table(table.name, old, *columns, PrimaryKeyConstraint(id_column), *indexes)
    return old


def test_a_version_1_database_is_rekeyed_per_run_and_keeps_its_rows(db_url, tmp_path):
    engine = create_engine(db_url)
    version_1_metadata().create_all(engine)
    with engine.begin() as conn:
        conn.execute(schema_version.insert().values(version=1, applied_ms=1))
        conn.execute(TABLES["orders"].insert(), [record_row("old-run", builders.order(i)) for i in range(3)])
        conn.execute(TABLES["fills"].insert(), [record_row("old-run", builders.fill(0))])
        conn.execute(TABLES["round_trips"].insert(), [record_row("old-run", builders.round_trip(0))])
    assert ensure_schema(engine) == 1
    with engine.connect() as conn:
        assert database_version(conn) == SCHEMA_VERSION == 2
        for name, id_column in RECORD_IDS.items():
            assert inspect(conn).get_pk_constraint(name)["constrained_columns"] == ["run_id", id_column], name
        assert {i["name"] for i in inspect(conn).get_indexes("orders")} >= {"ix_orders_run"}
    engine.dispose()

    with TradeStore(db_url, journal_path=tmp_path / "j") as store:
        assert store.orders("old-run") == [builders.order(i) for i in range(3)]
        assert store.fills("old-run") == [builders.fill(0)]
        for i in range(3):                       # a second run of the same profile numbers its orders alike
            store.record_order("new-run", builders.order(i, qty=0.5))
        store.record_fill("new-run", builders.fill(0, price=1.0))
        store.record_round_trip("new-run", builders.round_trip(0, pnl_krw=-1.0))
        assert store.flush(10)
        assert [o.qty for o in store.orders("new-run")] == [0.5] * 3
        assert [o.qty for o in store.orders("old-run")] == [builders.order(0).qty] * 3
        assert [f.price for f in store.fills("new-run")] == [1.0]
        assert [rt.pnl_krw for rt in store.round_trips("new-run")] == [-1.0]
        assert store.round_trips("old-run") == [builders.round_trip(0)]


def test_two_runs_reusing_ids_keep_their_own_rows(db_url, tmp_path):
    with TradeStore(db_url, journal_path=tmp_path / "j") as store:
        for run, price in (("run-1", 100.0), ("run-2", 200.0)):
            store.record_fill(run, builders.fill(0, price=price))
            store.record_guard_decision(run, 5, "BTC", "cooldown", "symbol", False, decision_id="BTC-p1-entry")
            store.record_alert(run, {"alert_id": "stuck-1", "message": run})
        store.record_fill("run-1", builders.fill(0, price=300.0))      # a repeat within a run is ignored
        assert store.flush(10)
        assert [f.price for f in store.fills("run-1")] == [100.0]
        assert [f.price for f in store.fills("run-2")] == [200.0]
        assert [a["message"] for a in store.alerts("run-2")] == ["run-2"]
        assert len(store.guard_decisions("run-1")) == len(store.guard_decisions("run-2")) == 1
        assert store.stored_ids("run-2") == {"orders": set(), "fills": {"f-0"}, "round_trips": set(),
                                             "alerts": {"stuck-1"}, "guard_decisions": {"BTC-p1-entry"}}
        with store.engine.connect() as conn:
            assert len(conn.execute(select(TABLES["fills"])).all()) == 2
