"""Storage fixtures: a SQLite file per test, and a throwaway schema in the real local PostgreSQL."""
from __future__ import annotations

import uuid
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_BASE = "postgresql+psycopg2://postgres@{host}:{port}/test"


def pg_url(schema: str, port: int = PG_PORT) -> str:
    """A URL whose connections use `schema` first, so parallel runs never share tables."""
    return PG_BASE.format(host=PG_HOST, port=port) + f"?options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    name = f"t_storage_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_BASE.format(host=PG_HOST, port=PG_PORT))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    yield name
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'trades.db'}"
    return pg_url(request.getfixturevalue("pg_schema"))
