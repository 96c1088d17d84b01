"""Crash recovery of a live run on the simulator: `python main.py live --profile P` opens a position and is
killed with SIGKILL (its whole process group: the driver, Ray and every actor, so nothing finishes
gracefully); `python main.py live --resume RUN_ID` then restores the desk from the run's Redis snapshot,
holds the same open position and realized PnL, closes that position normally, and no order is ever sent
twice. Before that resume, a stale arming and an order the snapshot does not know refuse the resume.

A second run loses a Binance reply (the simulator fills the order and answers 503 to everything), so the
order is unresolved when its actors are killed; the resumed run looks it up by client id and books it
before it trades again."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import ccxt
import pytest
import ray

from config.loader import load_profile
from live.arming import ARMED_AT, LiveRefused
from live.lease import LeaseHeld, RunLease
from live.run import run_live
from live.session import PreflightFailed
from live.venue import client_order_id
from sim import ccxt_overrides
from snapshots.keys import key
from snapshots.redis_store import RedisSnapshotStore
from tests.live.live_runs import (ACK_TEXT, TRADE_AT_ONCE, UPBIT, armed_env, new_orders, profile_file, run_profile,
                                  secrets_file, start_sim, wait_until)
from tests.live.test_live_run import FAST

REPO = Path(__file__).resolve().parents[2]
REDIS = "redis://127.0.0.1:6379/0"
# One position at a time, held 15 s: a round trip closes, the next position opens, then the crash.
STRATEGY = {**TRADE_AT_ONCE, "max_hold_ms": 15_000}
RISK = {"max_open_positions": 1}


def snapshot(run_id: str) -> dict | None:
    store = RedisSnapshotStore(REDIS)
    try:
        snap = store.get(key(run_id, "coordinator", "main"))
    finally:
        store.close()
    return None if snap is None else {"version": snap.version, **snap.payload}


def forget(run_id: str) -> None:
    store = RedisSnapshotStore(REDIS)
    try:
        store.delete(key(run_id, "coordinator", "main"))
    finally:
        store.close()


def positions(snap: dict, *states: str) -> list[dict]:
    return [p for p in snap["desk"]["portfolio"]["positions"] if p["state"] in states]


def round_trips(snap: dict) -> list[dict]:
    return snap["desk"]["portfolio"]["round_trips"]


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """`python main.py ...` in its own session (its Ray processes too), so one killpg takes all of it."""
    return subprocess.Popen([sys.executable, "main.py", *args], cwd=REPO, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def armed(secrets: Path) -> dict[str, str]:
    return {**os.environ, "RAY_ADDRESS": "", "ARB_SECRETS_FILE": str(secrets), "ARB_LIVE_ACK": ACK_TEXT,
            "ARB_LIVE_ARMED_AT": str(int(time.time()))}


def ours(sim, run_id: str) -> list[dict]:
    """The run's orders as the simulator saw them arrive (client ids carry the run's tag)."""
    tag = client_order_id(run_id, "x").split("-", 1)[0] + "-"
    return [e for e in new_orders(sim) if (e.get("client_id") or "").startswith(tag)]


@pytest.fixture(scope="module")
def crash(tmp_path_factory):
    """A live run killed with SIGKILL while it holds a position, after one round trip."""
    tmp = tmp_path_factory.mktemp("live-resume")
    sim = start_sim(minutes=20)
    secrets = secrets_file(tmp)
    path = profile_file(tmp, "live-resume-local", sim.urls(), STRATEGY, RISK, redis_url=REDIS)
    proc = start(["live", "--profile", str(path), "--duration", "600", "--no-progress"], armed(secrets),
                 tmp / "first.log")
    run_id = None
    try:
        running = wait_until(lambda: proc.poll() is not None or next((tmp / "out").glob("*/running.json"), None),
                             180, "the live run starting")
        assert proc.poll() is None, (tmp / "first.log").read_text()[-3000:]
        run_id = running.parent.name

        def holding() -> bool:
            snap = snapshot(run_id)
            return proc.poll() is not None or bool(snap and round_trips(snap) and positions(snap, "open"))
        wait_until(holding, 120, "a round trip, then an open position")
        os.killpg(proc.pid, signal.SIGKILL)      # the driver, its Ray and every actor: no finish, no final write
        proc.wait(30)
        after_kill = len(new_orders(sim))
        time.sleep(3.0)
        assert len(new_orders(sim)) == after_kill, "nothing of the killed run trades on"
        crashed = snapshot(run_id)
        assert positions(crashed, "open") and round_trips(crashed), "killed while holding a position"
        yield {"sim": sim, "tmp": tmp, "secrets": secrets, "path": path, "run_id": run_id, "crashed": crashed}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if run_id:
            forget(run_id)
        sim.stop()


def test_a_stale_arming_refuses_the_resume_before_any_connection(crash):
    sim, run_id = crash["sim"], crash["run_id"]
    requests = dict(sim.server.requests)
    stale = armed_env(crash["secrets"], ARB_LIVE_ARMED_AT=str(int(time.time()) - 11 * 60))
    with pytest.raises(LiveRefused) as err:
        run_live(load_profile(crash["path"]), 5, env=stale, options=FAST, resume=run_id)
    assert [f.name for f in err.value.failures] == [ARMED_AT]
    assert sim.server.requests == requests, "not one request reached a venue"
    assert snapshot(run_id)["version"] == crash["crashed"]["version"], "the snapshot is untouched"


def test_a_resume_while_another_process_holds_the_runs_lease_is_refused_before_any_connection(crash):
    """The crashed-looking run may still live (a hung driver, another terminal): two processes trading
    one run id would each send orders for the same desk."""
    sim, run_id = crash["sim"], crash["run_id"]
    requests = dict(sim.server.requests)
    other = RunLease(REDIS, run_id, ttl_s=10)
    other.acquire()
    try:
        with pytest.raises(LeaseHeld, match=f"held by {other.holder}"):
            run_live(load_profile(crash["path"]), 5, env=armed_env(crash["secrets"]), options=FAST, resume=run_id)
    finally:
        other.release()
    assert sim.server.requests == requests, "not one request reached a venue"
    assert snapshot(run_id)["version"] == crash["crashed"]["version"], "the snapshot is untouched"


def test_an_order_the_snapshot_does_not_know_blocks_the_resume(crash):
    """The preflight expects the run's own orders and positions; a stray open order still fails it."""
    sim = crash["sim"]
    upbit = ccxt.upbit({**ccxt_overrides(sim.urls(), "upbit"), "apiKey": UPBIT.key, "secret": UPBIT.secret})
    stray = upbit.create_order("BTC/KRW", "limit", "buy", 0.001, 100_000_000)
    try:
        with pytest.raises(PreflightFailed) as err:
            run_live(load_profile(crash["path"]), 5, env=armed_env(crash["secrets"]), options=FAST,
                     resume=crash["run_id"])
        (failed,) = err.value.report.failures
        assert failed.name == "upbit.open_orders" and stray["id"] in failed.detail
    finally:
        upbit.cancel_order(stray["id"], "BTC/KRW")
    assert snapshot(crash["run_id"])["version"] == crash["crashed"]["version"]


@pytest.fixture(scope="module")
def resumed(crash):
    """`main.py live --resume RUN_ID`, stopped with SIGTERM once the position it restored has closed and the
    resumed run has opened one of its own."""
    tmp, run_id, crashed = crash["tmp"], crash["run_id"], crash["crashed"]
    (held,) = positions(crashed, "open")
    proc = start(["live", "--resume", run_id, "--profile", str(crash["path"]), "--duration", "600", "--no-progress"],
                 armed(crash["secrets"]), tmp / "resumed.log")
    try:
        def closed_and_traded() -> bool:
            snap = snapshot(run_id)
            closed = any(rt["position_id"] == held["position_id"] for rt in round_trips(snap))
            return proc.poll() is not None or (closed and any(
                p["position_id"].endswith(".r1") for p in snap["desk"]["portfolio"]["positions"]))
        wait_until(closed_and_traded, 240, "the restored position closed and a new one opened")
        assert proc.poll() is None, (tmp / "resumed.log").read_text()[-3000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 0, (tmp / "resumed.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    run_dir = tmp / "out" / run_id
    return {"held": held, "kpi": json.loads((run_dir / "kpi.json").read_text()),
            "trades": [json.loads(x) for x in (run_dir / "trades.jsonl").read_text().splitlines()],
            "log": (tmp / "resumed.log").read_text()}


def test_the_resumed_desk_holds_the_crashed_runs_position_and_pnl(crash, resumed):
    crashed, kpi, held = crash["crashed"], resumed["kpi"], resumed["held"]
    restored = kpi["resumed"]
    assert restored["snapshot_version"] == crashed["version"] and restored["resumes"] == 1
    (pos,) = restored["open_positions"]
    assert (pos["position_id"], pos["symbol"], pos["state"], pos["qty"]) == (
        held["position_id"], held["symbol"], "open", held["qty"])
    assert pos["coin"] == {v: float(q) for v, q in held["coin"]}
    assert restored["round_trips"] == len(round_trips(crashed))
    assert restored["pnl_krw"] == pytest.approx(sum(rt["pnl_krw"] for rt in round_trips(crashed)))
    assert restored["awaiting_orders"] == [] and restored["settled_orders"] == []
    assert "resumed from snapshot version" in resumed["log"]


def test_the_kpis_continue_and_the_restored_position_closes_normally(crash, resumed):
    crashed, kpi, trades = crash["crashed"], resumed["kpi"], resumed["trades"]
    assert kpi["run_id"] == crash["run_id"] and kpi["exit_code"] == 0 and kpi["checkpoint"] is False
    started = datetime.fromtimestamp(crashed["started_ms"] / 1000, timezone.utc).isoformat(timespec="seconds")
    assert kpi["started_at"] == started, "the KPIs count from the crashed run's start"
    logged = [t for t in trades if t["type"] == "round_trip"]
    assert len(logged) == kpi["round_trips"] > len(round_trips(crashed))
    before = {rt["position_id"]: rt["pnl_krw"] for rt in round_trips(crashed)}
    assert {t["position_id"]: t["pnl_krw"] for t in logged if t["position_id"] in before} == pytest.approx(before)
    (closing,) = [t for t in logged if t["position_id"] == resumed["held"]["position_id"]]
    assert closing["exit_reason"] == "time_limit"
    # The resumed run's own positions are named apart from the crashed life's (its shards start at p1 again).
    new = [t["position_id"] for t in logged if t["position_id"] not in {*before, closing["position_id"]}]
    assert all(p.endswith(".r1") for p in new)
    assert kpi["last_reconcile"]["ok"], kpi["last_reconcile"]     # the ledger is the venues' balances
    assert kpi["unresolved_orders"] == [] and not kpi["frozen"]


def test_no_order_is_sent_twice(crash, resumed):
    kpi, trades = resumed["kpi"], resumed["trades"]
    placed = ours(crash["sim"], crash["run_id"])
    counts = Counter(e["client_id"] for e in placed)
    assert not [c for c, n in counts.items() if n > 1], "a client id reached the simulator twice"
    orders = [t for t in trades if t["type"] == "order"]
    assert len(orders) == kpi["orders_sent"] == len(placed)
    assert {client_order_id(crash["run_id"], o["order_id"]) for o in orders} == set(counts)


# ---- an order whose reply was lost when the actors died ----

@pytest.fixture
def lost_reply(ray_cluster, tmp_path: Path):
    """A live run (actors in the shared Ray cluster) whose Binance exit leg filled at the simulator but whose
    reply, and every lookup after it, failed; its actors are then killed (no finish, no final write)."""
    sim = start_sim(minutes=15)
    profile = run_profile(sim, tmp_path, strategy={**TRADE_AT_ONCE, "max_hold_ms": 8_000}, risk=RISK)
    env = armed_env(secrets_file(tmp_path))
    stop, outcome = threading.Event(), {}

    def first() -> None:
        try:
            run_live(profile, 300, env=env, stop=stop, options=FAST)
        except BaseException as exc:     # the actors die under it: expected
            outcome["error"] = exc
    thread = threading.Thread(target=first, name="live-first")
    thread.start()
    run_id = None
    try:
        running = wait_until(lambda: next((tmp_path / "runs").glob("*/running.json"), None) or outcome.get("error"),
                             120, "the live run starting")
        assert not isinstance(running, BaseException), running
        run_id = running.parent.name
        wait_until(lambda: (s := snapshot(run_id)) and positions(s, "open"), 60, "an open position")
        sim.fault({"kind": "http_error", "venue": "binance", "status": 503, "fraction": 1.0, "after": True})
        lost = wait_until(lambda: (s := snapshot(run_id)) and s["unresolved"], 60, "the exit leg unresolved")
        for name in ray.util.list_named_actors():
            if name.endswith(f"@{run_id}"):
                ray.kill(ray.get_actor(name), no_restart=True)
        thread.join(120)
        sim.fault({"kind": "clear"})
        yield {"sim": sim, "profile": profile, "env": env, "run_id": run_id, "lost": lost,
               "crashed": snapshot(run_id), "tmp": tmp_path}
    finally:
        stop.set()
        thread.join(60)
        if run_id:
            forget(run_id)
        sim.stop()


def test_an_order_left_unresolved_is_looked_up_by_client_id_and_booked_before_trading(lost_reply):
    sim, run_id, crashed = lost_reply["sim"], lost_reply["run_id"], lost_reply["crashed"]
    (order_id,) = lost_reply["lost"]
    (closing,) = positions(crashed, "closing")
    cid = client_order_id(run_id, order_id)
    assert [e["venue"] for e in new_orders(sim) if e["client_id"] == cid] == ["binance"], "placed once, reply lost"
    stop, outcome = threading.Event(), {}

    def again() -> None:
        try:
            outcome["kpi"] = run_live(lost_reply["profile"], 300, env=lost_reply["env"], stop=stop, options=FAST,
                                      resume=run_id)
        except BaseException as exc:
            outcome["error"] = exc
    thread = threading.Thread(target=again, name="live-resumed")
    thread.start()
    try:
        def booked() -> bool:
            snap = snapshot(run_id)
            return "error" in outcome or any(rt["position_id"] == closing["position_id"] for rt in round_trips(snap))
        wait_until(booked, 150, "the lost exit leg booked and the position closed")
    finally:
        stop.set()
        thread.join(120)
    if "error" in outcome:
        raise outcome["error"]
    kpi = outcome["kpi"]
    assert kpi["resumed"]["awaiting_orders"] == [order_id] and kpi["resumed"]["settled_orders"] == [order_id]
    assert [e["venue"] for e in new_orders(sim) if e["client_id"] == cid] == ["binance"], "never sent again"
    trades = [json.loads(x) for x in (Path(kpi["output_dir"]) / "trades.jsonl").read_text().splitlines()]
    (fill,) = [t for t in trades if t["type"] == "fill" and t["order_id"] == order_id]
    (placed,) = [e for e in new_orders(sim) if e["client_id"] == cid]
    (done,) = [e for e in sim.journal("order") if e["order_id"] == placed["order_id"]
               and e["event"] in ("filled", "canceled", "expired")]
    assert fill["qty"] == pytest.approx(done["filled_qty"]) and fill["qty"] > 0
    (rt,) = [t for t in trades if t["type"] == "round_trip" and t["position_id"] == closing["position_id"]]
    assert rt["exit_reason"] == "time_limit"
    assert kpi["last_reconcile"]["ok"], kpi["last_reconcile"]
    assert kpi["unresolved_orders"] == [] and kpi["degraded_venues"] == [] and not kpi["frozen"]
