"""Schema versioning: a new database is stamped, an older one migrated, a newer one refused."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from storage import SCHEMA_VERSION, SchemaTooNew, StorageError, TradeStore
from storage.schema import database_version, ensure_schema
from storage.tables import schema_version


def test_a_new_database_is_created_and_stamped(db_url, tmp_path):
    with TradeStore(db_url, journal_path=tmp_path / "j") as store:
        with store.engine.connect() as conn:
            assert database_version(conn) == SCHEMA_VERSION
            assert {"runs", "orders", "fills", "round_trips", "kpi_checkpoints", "alerts",
                    "guard_decisions", "schema_version"} <= set(inspect(conn).get_table_names())


def test_a_newer_database_is_refused_with_both_versions_named(db_url, tmp_path):
    TradeStore(db_url, journal_path=tmp_path / "j").close()
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(schema_version.insert().values(version=SCHEMA_VERSION + 1, applied_ms=1))
    engine.dispose()
    with pytest.raises(SchemaTooNew, match=rf"version {SCHEMA_VERSION + 1} is newer than this code's "
                                           rf"{SCHEMA_VERSION}"):
        TradeStore(db_url, journal_path=tmp_path / "j")


def test_refusal_releases_the_journal(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    TradeStore(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(schema_version.insert().values(version=SCHEMA_VERSION + 5, applied_ms=1))
    for _ in range(2):  # a second attempt gets the same clear refusal, not "journal in use"
        with pytest.raises(SchemaTooNew):
            TradeStore(url)


def test_migrations_run_in_order_and_stamp_each_step(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    assert ensure_schema(engine) == 0

    def add_note_column(conn):
        conn.execute(text("ALTER TABLE fills ADD COLUMN note TEXT"))

    def add_index(conn):
        conn.execute(text("CREATE INDEX ix_fills_note ON fills (note)"))

    steps = {SCHEMA_VERSION: add_note_column, SCHEMA_VERSION + 1: add_index}
    assert ensure_schema(engine, SCHEMA_VERSION + 2, steps) == SCHEMA_VERSION
    with engine.connect() as conn:
        assert database_version(conn) == SCHEMA_VERSION + 2
        assert "note" in {c["name"] for c in inspect(conn).get_columns("fills")}
        stamped = conn.execute(text("SELECT version FROM schema_version ORDER BY version")).scalars()
        assert list(stamped) == [SCHEMA_VERSION, SCHEMA_VERSION + 1, SCHEMA_VERSION + 2]
    assert ensure_schema(engine, SCHEMA_VERSION + 2, steps) == SCHEMA_VERSION + 2  # nothing to do


def test_a_missing_migration_step_is_named(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    ensure_schema(engine)
    with pytest.raises(StorageError, match=rf"no migration from schema version {SCHEMA_VERSION} to"):
        ensure_schema(engine, SCHEMA_VERSION + 1, {})


def test_unversioned_tables_are_not_guessed_at(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'u.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE fills (fill_id TEXT PRIMARY KEY)"))
    with pytest.raises(StorageError, match=r"tables \['fills'\] exist but no schema_version"):
        ensure_schema(engine)
