"""The preflight runner and its infrastructure checks, against real Redis, SQLite, PostgreSQL and git."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time

import pytest
from rich.console import Console

from domain.venues import Venue
from live.infra_checks import database_check, redis_check, secrets_file_check
from live.preflight import Check, CheckResult, run_preflight, render_table, to_json
from live.preflight_plan import VenueSetup, live_checks
from live.redact import Redactor, install_log_redaction, uninstall_log_redaction
from live.secrets import ApiKeys, Secret
from tests.live.fake_exchange import FakeBinance, FakeUpbit

REDIS_URL = "redis://127.0.0.1:6379/0"
PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def run(coro):
    return asyncio.run(coro)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ok_check(name):
    async def check():
        return CheckResult(name, True, "fine")
    return Check(name, check)


# --- the runner ---

def test_all_passing_checks_make_an_ok_report():
    report = run(run_preflight([ok_check("a"), ok_check("b")]))
    assert report.ok and [r.name for r in report.results] == ["a", "b"]


def test_no_checks_is_not_ok():
    assert not run(run_preflight([])).ok


def test_raising_check_fails_alone_with_scrubbed_error():
    key = "Kx9-raising-check-secret-value"
    install_log_redaction(Redactor([key]))
    try:
        async def boom():
            raise ConnectionError(f"GET /v1/accounts?key={key} refused")
        report = run(run_preflight([ok_check("a"), Check("boom", boom)]))
    finally:
        uninstall_log_redaction()
    assert not report.ok and [r.name for r in report.failures] == ["boom"]
    assert report.failures[0].detail == "ConnectionError: GET /v1/accounts?key=*** refused"


def test_hanging_check_times_out():
    async def hang():
        await asyncio.Event().wait()
    report = run(run_preflight([ok_check("a"), Check("hang", hang)], timeout_s=0.05))
    assert not report.ok and report.failures == (CheckResult("hang", False, "timed out after 0.05s"),)


def test_duplicate_names_are_refused():
    with pytest.raises(ValueError, match="duplicate check names \\['a'\\]"):
        run(run_preflight([ok_check("a"), ok_check("a")]))


def test_table_and_json_show_every_check():
    async def bad():
        return CheckResult("bad", False, "balance short")
    report = run(run_preflight([ok_check("good"), Check("bad", bad)]))
    console = Console(record=True, width=120)
    console.print(render_table(report))
    text = console.export_text()
    assert "FAILED (1)" in text and "balance short" in text and "good" in text
    doc = json.loads(to_json(report))
    assert doc["ok"] is False and doc["checks"][1] == {"name": "bad", "ok": False, "detail": "balance short"}


# --- infrastructure checks, for real ---

def test_redis_reachable_passes():
    result = run(redis_check(REDIS_URL))
    assert result.ok and "PING -> True" in result.detail


def test_redis_unreachable_fails_without_showing_the_password():
    result = run(redis_check(f"redis://:hunter2-pw@127.0.0.1:{closed_port()}/0", timeout_s=1))
    assert not result.ok and "ConnectionError" in result.detail and "hunter2" not in result.detail


def test_sqlite_file_database_passes(tmp_path):
    result = run(database_check(f"sqlite:///{tmp_path / 'trades.db'}"))
    assert result.ok and "SELECT 1 -> 1" in result.detail


def test_sqlite_in_missing_folder_fails(tmp_path):
    result = run(database_check(f"sqlite:///{tmp_path / 'no' / 'such' / 'trades.db'}"))
    assert not result.ok and "unable to open database file" in result.detail


def test_postgres_database_passes():
    result = run(database_check(PG_URL))
    assert result.ok, result.detail


def test_postgres_unreachable_fails_without_showing_the_password():
    result = run(database_check(f"postgresql+psycopg2://postgres:hunter2-pw@127.0.0.1:{closed_port()}/test"))
    assert not result.ok and "OperationalError" in result.detail and "hunter2" not in result.detail


def test_malformed_database_url_fails():
    result = run(database_check("not a url"))
    assert not result.ok and "malformed" in result.detail


def test_secrets_file_check_tracked_file_fails(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    path = tmp_path / "secrets.yaml"
    path.write_text("upbit: {api_key: a, secret: b}\n")
    os.chmod(path, 0o600)
    subprocess.run(["git", "-C", str(tmp_path), "add", "secrets.yaml"], check=True)
    result = run(secrets_file_check(path))
    assert not result.ok and "tracked by git" in result.detail
    assert run(secrets_file_check(None)).ok


# --- the standard plan, end to end ---

def healthy_venues(now_ms: int) -> dict[Venue, VenueSetup]:
    upbit_keys = ApiKeys("upbit", Secret("upbit-access-key-0001"), Secret("upbit-secret-key-0001"), "t")
    bn_keys = ApiKeys("binance", Secret("binance-api-key-00001"), Secret("binance-secret-0000001"), "t")
    upbit = FakeUpbit(server_time_ms=now_ms, free={"KRW": 10_000_000, "BTC": 0.1},
                      api_keys=[{"access_key": "upbit-access-key-0001", "expire_at": "2099-01-01T00:00:00Z"}])
    binance = FakeBinance(server_time_ms=now_ms, free={"USDT": 10_000, "BTC": 0.1})
    return {Venue.UPBIT: VenueSetup(upbit, upbit_keys, {"KRW": 5_000_000, "BTC": 0.05}),
            Venue.BINANCE: VenueSetup(binance, bn_keys, {"USDT": 5_000}),
            Venue.BINANCE_USDM: VenueSetup(binance, bn_keys)}


def test_standard_plan_passes_on_healthy_setup(tmp_path):
    venues = healthy_venues(int(time.time() * 1000))
    checks = live_checks(venues, None, REDIS_URL, f"sqlite:///{tmp_path / 't.db'}")
    report = run(run_preflight(checks))
    assert report.ok, to_json(report)
    assert "binance_usdm.positions" in [r.name for r in report.results]


def test_standard_plan_fails_on_a_foreign_order_and_dead_redis(tmp_path):
    venues = healthy_venues(int(time.time() * 1000))
    venues[Venue.UPBIT].exchange.open_orders.append({"id": "u-1", "symbol": "BTC/KRW", "side": "buy",
                                                     "amount": 0.001})
    checks = live_checks(venues, None, f"redis://127.0.0.1:{closed_port()}/0", f"sqlite:///{tmp_path / 't.db'}")
    report = run(run_preflight(checks))
    assert sorted(r.name for r in report.failures) == ["redis", "upbit.open_orders"]
