"""TradeJournal (actors/trade_journal.py) against real SQLite and PostgreSQL: every order, fill, round trip,
guard decision and engine alert of a desk lands exactly once, across restarts and a database outage."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace

import pytest

from actors.trade_journal import TradeJournal, decision_id, engine_alert_id, journal_path
from alerts.events import Alert
from config.paths import REPO
from domain.state import export_engine, restore_engine
from storage import StorageError
from tests.storage.conftest import PG_HOST, PG_PORT, pg_url
from tests.storage.scenario import scenario
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture(scope="module")
def scen():
    return scenario()


def assert_stored_once(journal: TradeJournal, desk) -> None:
    """The database holds exactly the desk's rows for the run: same records, same order, no extras."""
    assert journal.flush(20), journal.stats()
    store, run = journal.store, journal.run_id
    assert store.orders(run) == sorted(desk.trace.orders, key=lambda o: (o.ts_ms, o.order_id))
    assert store.fills(run) == sorted(desk.trace.fills, key=lambda f: (f.ts_ms, f.fill_id))
    assert store.round_trips(run) == sorted(desk.portfolio.round_trips, key=lambda r: (r.exit_ts_ms, r.position_id))
    decisions = {d.decision_id: d for d in store.guard_decisions(run)}
    assert set(decisions) == {decision_id(d) for d in desk.portfolio.decisions}
    assert len(decisions) == len(desk.portfolio.decisions)
    for d in desk.portfolio.decisions:
        got = decisions[decision_id(d)]
        assert (got.ts_ms, got.symbol, got.guard, got.tier, got.allowed, got.detail) == \
            (d.ts_ms, d.symbol, d.guard, d.tier, d.allowed, d.detail)
    engine_alerts = [a for a in store.alerts(run) if a["source"] == "engine"]
    assert sorted(a["message"] for a in engine_alerts) == sorted(desk.trace.alerts)


def test_every_row_of_a_run_is_written_once_as_it_happens(db_url, scen, tmp_path):
    engine = scen.engine()
    journal = TradeJournal(db_url, "tj-live", profile="paper-top50-local", journal_dir=tmp_path)
    try:
        offered = 0
        for book in scen.books:
            engine.on_book(book)
            offered += journal.sync(engine)
        engine.finish()
        offered += journal.sync(engine)
        assert len(engine.portfolio.round_trips) >= 6 and engine.trace.alerts   # a scenario with substance
        rows = (len(engine.trace.orders) + len(engine.trace.fills) + len(engine.portfolio.round_trips)
                + len(engine.portfolio.decisions) + len(engine.trace.alerts))
        assert offered == rows
        assert journal.sync(engine) == 0                                        # nothing new: nothing offered
        assert_stored_once(journal, engine)
        stats = journal.stats()
        assert stats["written"] == {"orders": len(engine.trace.orders), "fills": len(engine.trace.fills),
                                    "round_trips": len(engine.portfolio.round_trips),
                                    "guard_decisions": len(engine.portfolio.decisions),
                                    "alerts": len(engine.trace.alerts)}
        assert stats["committed"] == rows + 1                                   # + the run row
        assert stats["outages"] == 0 and stats["refused"] == stats["sync_errors"] == 0
        assert journal.store.run("tj-live").profile == "paper-top50-local"
    finally:
        journal.close()
    assert not journal.path.exists()      # empty once committed, removed on close


def test_a_restarted_desk_with_its_whole_history_writes_only_what_is_new(db_url, scen, tmp_path):
    half = len(scen.books) // 2
    first = scen.engine()
    journal = TradeJournal(db_url, "tj-restart", journal_dir=tmp_path)
    for book in scen.books[:half]:
        first.on_book(book)
        journal.sync(first)
    assert journal.flush(20)
    journal.close()
    before = {"orders": len(first.trace.orders), "fills": len(first.trace.fills),
              "round_trips": len(first.portfolio.round_trips), "guard_decisions": len(first.portfolio.decisions)}
    assert before["round_trips"] >= 2

    restarted = scen.engine()                     # the coordinator's constructor: restore the snapshot
    restore_engine(restarted, json.loads(json.dumps(export_engine(first))))
    journal = TradeJournal(db_url, "tj-restart", journal_dir=tmp_path)
    try:
        assert journal.readback == "ok"
        assert {k: journal.stats()["stored_at_start"][k] for k in before} == before
        for book in scen.books[half:]:
            restarted.on_book(book)
            journal.sync(restarted)
        restarted.finish()
        journal.sync(restarted)
        stats = journal.stats()
        for table, n in before.items():
            assert stats["skipped_already_stored"][table] == n, table
        assert stats["written"]["orders"] == len(restarted.trace.orders) - before["orders"]
        assert stats["written"]["fills"] == len(restarted.trace.fills) - before["fills"]
        assert_stored_once(journal, restarted)
        reference = scen.run()
        assert [o.order_id for o in restarted.trace.orders] == [o.order_id for o in reference.trace.orders]
    finally:
        journal.close()


# A coordinator process syncing through a PostgreSQL outage and killed before the database is back.
KILLED_COORDINATOR = """
import json, os, sys
from actors.trade_journal import TradeJournal
from tests.storage.scenario import scenario
url, run_id, journal_dir, upto = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
scen = scenario()
engine = scen.engine()
journal = TradeJournal(url, run_id, journal_dir=journal_dir)
half = upto // 2
for book in scen.books[:half]:
    engine.on_book(book)
    journal.sync(engine)
assert journal.flush(20)
print("cut", flush=True)
sys.stdin.readline()                       # the parent has cut the database path
for book in scen.books[half:upto]:
    engine.on_book(book)
    journal.sync(engine)
journal.flush(0.5)
print(json.dumps(journal.stats()), flush=True)
os._exit(9)                                # killed: no flush, no close
"""


def test_rows_buffered_by_a_coordinator_killed_in_an_outage_land_exactly_once(pg_schema, scen, tmp_path):
    upto = len(scen.books) * 3 // 4
    with TcpProxy(PG_HOST, PG_PORT) as proxy:
        url = pg_url(pg_schema, proxy.port)
        child = subprocess.Popen([sys.executable, "-c", KILLED_COORDINATOR, url, "tj-killed", str(tmp_path), str(upto)],
                                 cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        try:
            assert child.stdout.readline().strip() == "cut", child.stderr.read()
            proxy.cut()
            child.stdin.write("go\n")
            child.stdin.flush()
            died = json.loads(child.stdout.readline() or "null")
            assert child.wait(60) == 9, child.stderr.read()
        finally:
            child.kill()
        assert died is not None and died["outages"] == 1 and died["backlog"] > 0
        assert died["last_error"] is not None

        proxy.restore()
        desk = scen.engine()                       # the same desk the killed process held, restored
        for book in scen.books[:upto]:
            desk.on_book(book)
        journal = TradeJournal(url, "tj-killed", journal_dir=tmp_path)
        try:
            assert journal.stats()["replayed_from_journal"] == died["backlog"]
            for book in scen.books[upto:]:
                desk.on_book(book)
                journal.sync(desk)
            desk.finish()
            journal.sync(desk)
            assert_stored_once(journal, desk)
        finally:
            journal.close()
    print(f"\nkilled in an outage: {died['backlog']} writes buffered, {died['failed_attempts']} failed attempts; "
          f"replayed {died['backlog']} from the journal on restart")


def test_a_journal_opened_while_the_database_is_down_catches_up(pg_schema, scen, tmp_path):
    desk = scen.run(scen.books[:120])
    with TcpProxy(PG_HOST, PG_PORT) as proxy:
        proxy.cut()
        journal = TradeJournal(pg_url(pg_schema, proxy.port), "tj-down", journal_dir=tmp_path)
        try:
            assert journal.readback.startswith("skipped") and journal.sync(desk) > 0
            assert not journal.flush(0.3) and journal.stats()["backlog"] > 0
            proxy.restore()
            assert_stored_once(journal, desk)
            assert journal.stats()["outages"] == 1
        finally:
            journal.close()


def test_sync_never_raises_into_trading(scen, tmp_path):
    engine = scen.run(scen.books[:120])
    journal = TradeJournal(f"sqlite:///{tmp_path / 't.db'}", "tj-bad", journal_dir=tmp_path)
    try:
        good = engine.trace.fills[0]
        engine.trace.fills.append(replace(good, fill_id="bad-fill", price=math.nan))
        assert journal.sync(engine) > 0
        assert journal.stats()["refused"] == 1
        assert journal.sync(object()) == 0              # not a desk at all: logged and counted
        assert journal.stats()["sync_errors"] == 1
        assert journal.flush(10)
        assert "bad-fill" not in {f.fill_id for f in journal.store.fills("tj-bad")}
        assert len(journal.store.fills("tj-bad")) == len(engine.trace.fills) - 1
    finally:
        journal.close()


def test_checkpoints_and_alerts_are_recorded_once(db_url, tmp_path):
    journal = TradeJournal(db_url, "tj-kpi", journal_dir=tmp_path)
    try:
        journal.checkpoint({"round_trips": 3, "pnl_krw": 1250.5}, ts_ms=60_000)
        alert = Alert("P1", "feed_reconnect", "feed-upbit", "BTC", "upbit BTC: reconnecting in 0.2s", 1_000)
        first = journal.alert(alert)
        assert journal.alert(alert.to_dict()) == first            # offered again after a restart: one row
        with pytest.raises(ValueError, match="trade journal alert.severity: 'P9' is not a severity"):
            journal.alert({**alert.to_dict(), "severity": "P9"})
        with pytest.raises(ValueError, match="kpi checkpoint tj-kpi@5: not JSON-safe"):
            journal.checkpoint({"roi": math.inf}, ts_ms=5)
        assert journal.flush(10)
        assert journal.store.latest_kpi("tj-kpi") == {"round_trips": 3, "pnl_krw": 1250.5}
        [stored] = journal.store.alerts("tj-kpi")
        assert (stored["alert_id"], stored["kind"], stored["symbol"]) == (first, "feed_reconnect", "BTC")
    finally:
        journal.close()


def test_journal_files_are_per_run_and_bad_urls_are_named(tmp_path):
    assert journal_path(f"sqlite:///{tmp_path / 'a.db'}", "run/1") == tmp_path / "a.db.run_1.journal"
    pg = journal_path("postgresql+psycopg2://postgres:secret@127.0.0.1:5432/test", "r1", tmp_path)
    assert pg.parent == tmp_path and pg.name.endswith("-r1.jsonl") and "secret" not in str(pg)
    assert pg != journal_path("postgresql+psycopg2://postgres@127.0.0.1:5432/test", "r2", tmp_path)
    assert engine_alert_id("XRP-p1: stuck") == engine_alert_id("XRP-p1: stuck") != engine_alert_id("XRP-p2: stuck")
    with pytest.raises(StorageError, match="mysql://root@127.0.0.1/test: only sqlite and postgresql"):
        TradeJournal("mysql://root@127.0.0.1/test", "r1", journal_dir=tmp_path)
    with pytest.raises(StorageError, match=r"'postgres://u:\*\*\*@h:x/db' is not a database URL"):
        TradeJournal("postgres://u:pw@h:x/db", "r1", journal_dir=tmp_path)
    with pytest.raises(ValueError, match="run_id must be a non-empty string"):
        TradeJournal(f"sqlite:///{tmp_path / 'a.db'}", "", journal_dir=tmp_path)
