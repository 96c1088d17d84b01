"""Schema migrations, one function per step: MIGRATIONS[n] upgrades a database at version n to n + 1.

Each step runs inside one transaction (storage.schema.ensure_schema), so a failed step leaves the
database at its last good version.
"""
from __future__ import annotations

from typing import Callable, Mapping

from sqlalchemy import Connection, MetaData, inspect, text
from sqlalchemy.schema import CreateTable

from storage.tables import RECORD_IDS, TABLES

Migration = Callable[[Connection], None]


def per_run_keys(conn: Connection) -> None:
    """1 -> 2: key orders, fills, round trips, alerts and guard decisions by (run_id, id), keeping every row."""
    for name, id_column in RECORD_IDS.items():       # version 1 keyed each by its id alone
        if conn.dialect.name == "postgresql":
            _postgres_rekey(conn, name, id_column)
        else:
            _sqlite_rebuild(conn, name)


def _postgres_rekey(conn: Connection, name: str, id_column: str) -> None:
    old = inspect(conn).get_pk_constraint(name).get("name")
    if old:
        conn.execute(text(f'ALTER TABLE "{name}" DROP CONSTRAINT "{old}"'))
    conn.execute(text(f'ALTER TABLE "{name}" ADD CONSTRAINT "{name}_pkey" PRIMARY KEY (run_id, {id_column})'))


def _sqlite_rebuild(conn: Connection, name: str) -> None:
    """SQLite cannot change a primary key in place: build the new table, copy the rows, swap.
    (It builds the table as tables.py defines it now: a later step that changes these tables must
    pin its version 2 shape here.)"""
    table = TABLES[name]
    for index in inspect(conn).get_indexes(name):     # their names are reused by the new table
        conn.execute(text(f'DROP INDEX "{index["name"]}"'))
    staged = f"{name}__v2"
    conn.execute(text(f'DROP TABLE IF EXISTS "{staged}"'))
    conn.execute(CreateTable(table.to_metadata(MetaData(), name=staged)))   # no indexes yet
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    conn.execute(text(f'INSERT INTO "{staged}" ({columns}) SELECT {columns} FROM "{name}"'))
    conn.execute(text(f'DROP TABLE "{name}"'))
    conn.execute(text(f'ALTER TABLE "{staged}" RENAME TO "{name}"'))
    for index in table.indexes:
        index.create(conn)


MIGRATIONS: Mapping[int, Migration] = {1: per_run_keys}
