"""A live session with known fake keys, through failures and the kill switch; then every output it
produced (log records, preflight.json, kill report, alerts, KPI JSON, trade log, a Redis snapshot,
database rows, exception texts) is scanned for the key strings and their encodings: zero hits."""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from backtest.outputs import write_json_atomic, write_trade_log
from backtest.runner import kpi_document
from domain.orders import Direction, OrderIntent, Purpose
from live.arming import LiveRefused
from live.session import PreflightFailed, open_session
from sim import SimServer
from sim.auth import ApiKey
from snapshots.redis_store import RedisSnapshotStore
from storage.trade_store import TradeStore
from tests.live.sim_venues import FAST, key_env, sim_profile
from tests.sim.support import BALANCES, recorded_books, step_venue

KEY, SECRET = "scanFakeApiKey7Qx93kLmPw", "scanFakeSecretZp4Rt8Vw2Yq6Nb1Hc5Jd"
ACK = "I understand this trades real money"


def forms(value: str) -> set[str]:
    raw = value.encode()
    return {value, quote(value, safe=""), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")}


FORBIDDEN = forms(KEY) | forms(SECRET)


def hits(text: str) -> list[str]:
    return [f for f in FORBIDDEN if f in text]


@dataclass(frozen=True)
class Source:
    source: str = "live on the local simulator"
    synthetic: bool = False
    notes: tuple[str, ...] = ()
    columns: None = None


def test_the_scan_itself_finds_a_planted_key() -> None:
    assert hits(f"GET /x?key={KEY}") and hits(base64.b64encode(SECRET.encode()).decode())


def test_a_live_session_leaks_no_key_into_any_output(data: Path, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    run_id = f"scan-{int(time.time() * 1000)}"
    texts: dict[str, str] = {}

    async def scenario() -> None:
        balances = {(v, KEY): dict(BALANCES[(v, "sim-test-key")]) for v in ("upbit", "binance", "binance_usdm")}
        sim = SimServer(recorded_books(data), keys=[ApiKey(KEY, SECRET)], balances=balances)
        await sim.start()
        try:
            books = [step_venue(sim, "upbit"), step_venue(sim, "binance")]
            profile = sim_profile(sim.urls(), tmp_path)
            env = {**key_env(KEY, SECRET), "ARB_LIVE_ACK": ACK, "ARB_LIVE_ARMED_AT": str(int(time.time()))}
            with pytest.raises(LiveRefused) as refused:                       # wrong ack: refused
                await open_session(profile, {**env, "ARB_LIVE_ACK": "ok"}, run_id)
            texts["refusal"] = str(refused.value)
            with pytest.raises(PreflightFailed) as failed:                    # wrong secret: preflight fails
                await open_session(profile, {**env, "ARB_BINANCE_API_SECRET": SECRET[::-1]}, run_id,
                                   out_dir=tmp_path / "failed", rate_limit=False)
            texts["preflight failure"] = str(failed.value)
            session = await open_session(profile, env, run_id, out_dir=tmp_path / "run", backoff=FAST,
                                         rate_limit=False)
            desk = session.desk
            try:
                desk.on_books(books)
                await sim.fault({"kind": "http_error", "venue": "binance", "status": 502, "count": 1, "after": True})
                await desk.submit(OrderIntent("BTC-p1-entry", "BTC", desk.now, Purpose.ENTRY, Direction.RICH,
                                              0.0005, 0.003, "scan", "BTC-p1"))
                await sim.fault({"kind": "http_error", "venue": "upbit", "status": 503, "fraction": 1.0})
                await desk.submit(OrderIntent("BTC-p1-exit", "BTC", desk.now, Purpose.EXIT, Direction.RICH,
                                              0.0005, 0.0, "scan", "BTC-p1"))
                await sim.fault({"kind": "clear"})
                reconcile = await desk.reconcile()
                await sim.fault({"kind": "http_error", "venue": "upbit", "status": 500, "fraction": 1.0})
                session.kill_switch.deadline_s = 1.0
                kill = await desk.kill("scan: kill switch while Upbit fails", "freeze")
                await sim.fault({"kind": "clear"})
            finally:
                await session.close()
        finally:
            await sim.stop()
        assert any("unresolved" in a for a in desk.trace.alerts), "the outage produced venue error texts"
        out = tmp_path / "run"
        write_json_atomic(out / "kpi.json", kpi_document(profile, desk, Source(), run_id, time.time(), [], 0, out,
                                                         (desk.now, desk.now)))
        write_trade_log(out / "trades.jsonl", desk.trace.orders, desk.trace.fills, desk.portfolio.round_trips,
                        desk.portfolio.decisions)
        (out / "kill.json").write_text(json.dumps(kill.to_dict()))
        texts["alerts"] = json.dumps(desk.trace.alerts)
        texts["reconcile"] = json.dumps(asdict(reconcile))
        texts["venue stats"] = json.dumps(desk.venue_stats())
        store = RedisSnapshotStore("redis://127.0.0.1:6379/0")
        key = f"arb:{run_id}:coordinator:desk"
        try:
            store.put(key, {"ledger": desk.ledger.to_dict(), "risk": desk.portfolio.risk.to_dict(),
                            "sent": desk.sent, "alerts": desk.trace.alerts})
            texts["redis"] = b"".join(redis.Redis.from_url("redis://127.0.0.1:6379/0").lrange(key, 0, -1)).decode()
        finally:
            store.delete(key)
            store.close()
        trades = TradeStore(f"sqlite:///{tmp_path / 'trades.db'}", journal=False)
        trades.start_run(run_id, "live", profile.name, profile.digest(), int(time.time() * 1000))
        for order in desk.trace.orders:
            trades.record_order(run_id, order)
        for fill in desk.trace.fills:
            trades.record_fill(run_id, fill)
        for alert in desk.trace.alerts:
            trades.record_alert(run_id, {"severity": "warning", "kind": "live", "message": alert})
        assert trades.flush()
        trades.close()

    asyncio.run(asyncio.wait_for(scenario(), 90))
    with sqlite3.connect(tmp_path / "trades.db") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        texts["database"] = "\n".join(repr(row) for t in tables for row in db.execute(f'SELECT * FROM "{t}"'))
    texts["log records"] = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            texts[str(path.relative_to(tmp_path))] = path.read_bytes().decode("utf-8", "replace")
    assert {"run/preflight.json", "failed/preflight.json", "run/kpi.json", "run/trades.jsonl", "run/kill.json"} <= set(texts)
    assert "AuthenticationError" in texts["preflight failure"] and "alerts" in texts and texts["database"]
    leaks = {where: found for where, text in texts.items() if (found := hits(text))}
    assert leaks == {}, leaks
