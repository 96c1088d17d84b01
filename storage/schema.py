"""Schema versioning: create and stamp a new database, migrate an older one, refuse a newer one."""
from __future__ import annotations

import time
from typing import Mapping

from sqlalchemy import Connection, Engine, func, inspect, select

from storage.errors import SchemaTooNew, StorageError
from storage.migrations import MIGRATIONS, Migration
from storage.tables import TABLES, metadata, schema_version

SCHEMA_VERSION = 2   # 2: record tables keyed by (run_id, id)


def database_version(conn: Connection) -> int | None:
    """The version stamped in the database, or None when it has no schema_version table."""
    if not inspect(conn).has_table(schema_version.name):
        return None
    version = conn.execute(select(func.max(schema_version.c.version))).scalar()
    return int(version) if version is not None else None


def ensure_schema(engine: Engine, code_version: int = SCHEMA_VERSION,
                  migrations: Mapping[int, Migration] = MIGRATIONS) -> int:
    """Bring the database at `engine` to `code_version` and return the version it was found at (0 = new)."""
    where = engine.url.render_as_string(hide_password=True)
    with engine.begin() as conn:
        found = database_version(conn)
        if found is None:
            existing = [name for name in TABLES if inspect(conn).has_table(name)]
            if existing:
                raise StorageError(f"{where}: tables {existing} exist but no schema_version table; "
                                   "refusing to guess their version")
            metadata.create_all(conn)
            conn.execute(schema_version.insert().values(version=code_version, applied_ms=_now_ms()))
            return 0
    if found > code_version:
        raise SchemaTooNew(f"{where}: database schema version {found} is newer than this code's "
                           f"{code_version}; upgrade the code, do not write to it with an older one")
    for version in range(found, code_version):
        step = migrations.get(version)
        if step is None:
            raise StorageError(f"{where}: no migration from schema version {version} to {version + 1}")
        with engine.begin() as conn:  # one transaction per step: a failed step leaves the last good version
            step(conn)
            conn.execute(schema_version.insert().values(version=version + 1, applied_ms=_now_ms()))
    return found


def _now_ms() -> int:
    return int(time.time() * 1000)
