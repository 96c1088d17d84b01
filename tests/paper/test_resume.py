"""SIGKILL the whole paper process mid-run, then `python main.py --resume RUN_ID`: every actor comes back
from its Redis snapshot, the same run goes on, and no position or round trip is lost."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from config.loader import load_profile
from domain.state import restore_engine
from paper.desk import News, PaperDesk
from snapshots.keys import key
from snapshots.redis_store import RedisSnapshotStore
from tests.paper.test_paper_run import REPO, paper_test_profile

REDIS_URL = "redis://127.0.0.1:6379/0"


def start(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "main.py", *args, "--no-progress"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def desk_from_snapshot(profile, running: dict) -> PaperDesk:
    """The coordinator's state as Redis held it at the kill, loaded into a desk to read."""
    params = profile.to_domain()
    balances = {(v, a): x for v, a, x in running["starting_balances"]}
    desk = PaperDesk(running["coins"], params.strategy, params.risk, params.market, params.fx, balances)
    snap = RedisSnapshotStore(REDIS_URL).get(key(running["run_id"], "coordinator", "main"))
    restore_engine(desk, snap.payload["desk"], news_type=News)
    return desk


def test_sigkill_mid_run_then_resume_loses_no_position(tmp_path):
    profile_path = paper_test_profile(tmp_path)
    profile = load_profile(str(profile_path))
    out = tmp_path / "out"
    env = {**os.environ, "RAY_ADDRESS": ""}
    proc = start(["--profile", str(profile_path), "--speed", "2", "--out", str(out)], env)
    try:
        deadline = time.monotonic() + 120
        while True:
            kpis = list(out.glob("*/kpi.json"))
            if kpis and json.loads(kpis[0].read_text()).get("round_trips", 0) >= 2:
                break
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate(timeout=10)
            time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)   # no cleanup of any kind: the snapshots are all there is
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    run_dir = kpis[0].parent
    running = json.loads((run_dir / "running.json").read_text())
    assert running["snapshots"] is True
    at_kill = desk_from_snapshot(profile, running)
    trips_at_kill = {rt.position_id: rt.pnl_krw for rt in at_kill.portfolio.round_trips}
    open_at_kill = {p.position_id for p in at_kill.portfolio.open_positions()}
    assert trips_at_kill

    began = time.monotonic()
    resumed = start(["--profile", str(profile_path), "--resume", running["run_id"], "--out", str(out),
                     "--duration", "6"], env)
    while not json.loads((run_dir / "running.json").read_text()).get("resumed"):
        assert resumed.poll() is None, resumed.communicate(timeout=10)
        assert time.monotonic() - began < 120
        time.sleep(0.1)
    resume_s = time.monotonic() - began
    _, stderr = resumed.communicate(timeout=120)
    print(f"whole-process resume: {resume_s:.1f}s from `main.py --resume` to trading again")
    assert resumed.returncode == 0, stderr[-3000:]
    kpi = json.loads((run_dir / "kpi.json").read_text())
    assert kpi["resumed"] is True and kpi["run_id"] == running["run_id"]
    rows = [json.loads(x) for x in (run_dir / "trades.jsonl").read_text().splitlines()]
    final = {r["position_id"]: r["pnl_krw"] for r in rows if r["type"] == "round_trip"}
    assert all(final.get(pid) == pnl for pid, pnl in trips_at_kill.items()), "a round trip was lost"
    entered = {r["position_id"] for r in rows if r["type"] == "order"}
    assert open_at_kill <= entered, "a position open at the kill vanished"
    assert kpi["round_trips"] == len(final) >= len(trips_at_kill)
    fill_ids = [r["fill_id"] for r in rows if r["type"] == "fill"]
    assert len(fill_ids) == len(set(fill_ids)), "a fill was booked twice"
    client = redis.Redis.from_url(REDIS_URL)
    for name in client.scan_iter(match=f"*arb:{running['run_id']}:*"):
        client.delete(name)
