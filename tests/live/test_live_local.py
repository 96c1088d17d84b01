"""The live rehearsal as an operator runs it, two real processes: `python -m sim --synthetic 2
--keys-from-env --fund-profile live-local`, then `python -m live run --profile <live-local on its port>`
with the keys only in the environment (Ray started by the run, its workers inherit them). It trades,
stops on SIGTERM with exit 0 and its KPIs, and neither process prints a key."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


from tests.live.live_runs import ACK_TEXT, TRADE_AT_ONCE, profile_file, wait_until

REPO = Path(__file__).resolve().parents[2]
KEYS = {"ARB_UPBIT_ACCESS_KEY": "rehearsal-upbit-access-N3v8Qa",
        "ARB_UPBIT_SECRET_KEY": "rehearsal-upbit-secret-Hs5Lw1Pc7Tz",
        "ARB_BINANCE_API_KEY": "rehearsal-binance-key-Ud2Km6",
        "ARB_BINANCE_API_SECRET": "rehearsal-binance-secret-Rq9Fy4Gb0Xe"}


def test_the_rehearsal_trades_and_stops_on_sigterm_with_its_kpis(tmp_path: Path):
    env = {**os.environ, **KEYS, "RAY_ADDRESS": ""}
    journal = tmp_path / "journal.jsonl"
    sim = subprocess.Popen([sys.executable, "-m", "sim", "--synthetic", "2", "--hours", "1", "--port", "0",
                            "--keys-from-env", "--fund-profile", "live-local", "--journal", str(journal)],
                           cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = None
    try:
        urls = json.loads(sim.stdout.readline())
        profile = profile_file(tmp_path, "live-rehearsal-local", urls, TRADE_AT_ONCE)
        armed = {**env, "ARB_LIVE_ACK": ACK_TEXT, "ARB_LIVE_ARMED_AT": str(int(time.time()))}
        run = subprocess.Popen([sys.executable, "-m", "live", "run", "--profile", str(profile), "--duration", "120"],
                               cwd=REPO, env=armed, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def ours() -> list[dict]:
            lines = journal.read_text().splitlines() if journal.exists() else []
            return [e for e in map(json.loads, lines) if e["kind"] == "order" and e.get("client_id")]
        wait_until(lambda: run.poll() is not None or len(ours()) >= 4, 150, "orders of the live run")
        assert run.poll() is None, run.communicate(timeout=30)
        run.send_signal(signal.SIGTERM)
        stdout, stderr = run.communicate(timeout=120)
    finally:
        for proc in (run, sim):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    assert run.returncode == 0, stderr[-3000:]
    (kpi_file,) = (tmp_path / "out").glob("*/kpi.json")
    kpi = json.loads(kpi_file.read_text())
    assert kpi["mode"] == "live" and kpi["checkpoint"] is False and kpi["exit_code"] == 0
    assert kpi["orders_sent"] >= 4 and kpi["last_reconcile"]["ok"], kpi["last_reconcile"]
    assert (kpi_file.parent / "preflight.json").exists() and (kpi_file.parent / "trades.jsonl").exists()
    running = json.loads((kpi_file.parent / "running.json").read_text())
    assert running["ray_dashboard"], "the run started its own Ray (with the dashboard)"
    alerts = tmp_path / "alerts.log"
    outputs = stdout + stderr + (alerts.read_text() if alerts.exists() else "") + kpi_file.read_text()
    assert not [v for v in KEYS.values() if v in outputs], "a key was printed or written"
