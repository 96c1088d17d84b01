"""Outage tolerance: writes during a PostgreSQL outage are buffered, journalled, and land exactly once."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from config.paths import REPO
from storage import JournalError, TradeStore
from storage.journal import Journal
from storage.records import record_row
from storage.tables import fills as fills_table
from tests.storage import builders
from tests.storage.conftest import PG_HOST, PG_PORT, pg_url
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
def proxy():
    with TcpProxy(PG_HOST, PG_PORT) as p:
        yield p


def count_fills(store: TradeStore) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(fills_table)).scalar()


def test_fills_recorded_during_an_outage_land_exactly_once(proxy, pg_schema, tmp_path):
    store = TradeStore(pg_url(pg_schema, proxy.port), journal_path=tmp_path / "j", max_backoff_s=0.2)
    try:
        store.start_run("out-1", "paper", "p", "d")
        store.record_fill("out-1", builders.fill(0))
        assert store.flush(10)  # a pooled connection now exists and is about to die

        proxy.cut()
        slowest = 0.0
        for i in range(1, 51):
            began = time.perf_counter()
            store.record_fill("out-1", builders.fill(i))
            slowest = max(slowest, time.perf_counter() - began)
        assert slowest < 0.05, f"record_fill blocked {slowest:.3f}s during the outage"
        assert store.backlog() == 50
        assert not store.flush(0.5)
        assert store.last_error is not None and "Error" in store.last_error
        assert store.backlog() == 50

        proxy.restore()
        assert store.flush(20), f"backlog {store.backlog()} after restore: {store.last_error}"
        assert store.last_error is None
        assert [f.fill_id for f in store.fills("out-1")] == [f"f-{i}" for i in range(51)]
        assert count_fills(store) == 51
        assert (tmp_path / "j").stat().st_size == 0
    finally:
        store.close()


def test_a_store_opened_while_the_database_is_down_catches_up(proxy, pg_schema, tmp_path):
    proxy.cut()
    store = TradeStore(pg_url(pg_schema, proxy.port), journal_path=tmp_path / "j", max_backoff_s=0.2)
    try:
        store.start_run("out-2", "live", "p", "d")
        store.record_round_trip("out-2", builders.round_trip(1))
        assert store.backlog() == 2 and not store.flush(0.3)
        proxy.restore()
        assert store.flush(20)
        assert store.run("out-2").mode == "live"
        assert store.round_trips("out-2") == [builders.round_trip(1)]
    finally:
        store.close()


CRASHING_WRITER = """
import os, sys
from storage import TradeStore
from tests.storage import builders
store = TradeStore(sys.argv[1], journal_path=sys.argv[2], max_backoff_s=0.2)
for i in range(20):
    store.record_fill("crash-1", builders.fill(i))
store.record_kpi_checkpoint("crash-1", 60_000, {"fills": 20})
print(store.backlog(), flush=True)
os._exit(3)  # die without closing: no flush, no cleanup
"""


def test_a_new_store_replays_the_journal_a_crashed_process_left(proxy, pg_schema, tmp_path):
    proxy.cut()
    journal = tmp_path / "crash.jsonl"
    done = subprocess.run([sys.executable, "-c", CRASHING_WRITER, pg_url(pg_schema, proxy.port),
                           str(journal)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    assert done.stdout.strip() == "21"

    with TradeStore(pg_url(pg_schema), journal_path=journal) as store:
        assert store.flush(20)
        assert [f.fill_id for f in store.fills("crash-1")] == [f"f-{i}" for i in range(20)]
        assert store.latest_kpi("crash-1") == {"fills": 20}


def test_replaying_writes_already_committed_adds_nothing(db_url, tmp_path):
    path = tmp_path / "j"
    with TradeStore(db_url, journal_path=path) as store:
        for i in range(5):
            store.record_fill("dup-1", builders.fill(i))
        assert store.flush(10)
    journal = Journal(path)  # as if the process died after the commit but before the ack
    for i in range(5):
        journal.append({"op": "insert", "table": "fills", "row": record_row("dup-1", builders.fill(i))})
    journal.close()
    with TradeStore(db_url, journal_path=path) as store:
        assert store.flush(10)
        assert len(store.fills("dup-1")) == 5 and count_fills(store) == 5


def test_a_truncated_last_journal_line_is_dropped_with_a_warning(tmp_path, caplog):
    path = tmp_path / "j"
    journal = Journal(path)
    journal.append({"op": "insert", "table": "fills", "row": record_row("t-1", builders.fill(0))})
    journal.close()
    with open(path, "ab") as f:
        f.write(b'{"seq":2,"op":"insert","table":"fil')  # the crash hit mid-append
    with caplog.at_level(logging.WARNING):
        with TradeStore(f"sqlite:///{tmp_path / 'a.db'}", journal_path=path) as store:
            assert store.flush(10)
            assert [f.fill_id for f in store.fills("t-1")] == ["f-0"]
    assert "dropping a truncated last line" in caplog.text


def test_a_corrupt_journal_line_is_named(tmp_path):
    path = tmp_path / "j"
    path.write_text('{"seq":1,"op":"insert","table":"fills","row":{}}\nnot json\n{"ack":1}\n')
    with pytest.raises(JournalError, match=rf"journal {path} line 2: unreadable entry"):
        TradeStore(f"sqlite:///{tmp_path / 'a.db'}", journal_path=path)


def test_two_stores_cannot_share_a_journal(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with TradeStore(url):
        with pytest.raises(JournalError, match="in use by another open TradeStore"):
            TradeStore(url)


def test_a_write_the_database_refuses_is_set_aside_not_retried_forever(pg_schema, tmp_path):
    with TradeStore(pg_url(pg_schema), journal_path=tmp_path / "j") as store:
        store.record_fill("bad-1", builders.fill(0))
        store.record_fill("bad-1", builders.fill(1, symbol="X" * 40))  # longer than the column
        store.record_fill("bad-1", builders.fill(2))
        assert store.flush(10)
        assert [f.fill_id for f in store.fills("bad-1")] == ["f-0", "f-2"]
        assert store.rejected == 1
    [line] = (tmp_path / "j.rejected").read_text().splitlines()
    rejected = json.loads(line)
    assert rejected["row"]["fill_id"] == "f-1" and "StringDataRightTruncation" in rejected["error"]


def test_outage_counters_say_what_was_held_and_committed(proxy, pg_schema, tmp_path):
    store = TradeStore(pg_url(pg_schema, proxy.port), journal_path=tmp_path / "j", max_backoff_s=0.2)
    try:
        store.record_fill("cnt-1", builders.fill(0))
        assert store.flush(10)
        assert store.stats()["outages"] == 0 and store.stats()["committed"] == 1
        proxy.cut()
        for i in range(1, 31):
            store.record_fill("cnt-1", builders.fill(i))
        assert not store.flush(0.5)
        during = store.stats()
        assert during["outages"] == 1 and during["failed_attempts"] >= 1
        assert during["backlog"] == 30 and during["last_error"] is not None
        proxy.restore()
        assert store.flush(20)
        after = store.stats()
        assert (after["outages"], after["held_through_outage"], after["committed"]) == (1, 30, 31)
        assert after["backlog"] == 0 and after["last_error"] is None and after["peak_backlog"] == 30
    finally:
        store.close()
