"""`python main.py --profile <paper local>` as a user runs it: a real process, real Ray actors, real ccxt.pro
against the loopback simulator. SIGTERM stops it gracefully (exit 0, KPI JSON written), and the books
it recorded (--record) are backtest input that replays to nearly the same decisions.

Real time is not deterministic (two feeds, Ray hops, a flush timer), so this run is compared with a
tolerance and the match rate printed; exact parity of paper and backtest on one stream is proven in
lockstep by tests/actors/test_lockstep_parity.py."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from backtest.runner import build_engine
from config.loader import load_profile
from marketdata.parquet_books import file_info, read_books

REPO = Path(__file__).resolve().parents[2]
TRADE_SECONDS = 15
SPEED = 2
# Real time between the two feeds, the coalescing flush and the Ray hops shifts a decision by a few
# tens of ms of book time (x SPEED); the replay sees the same books but not the same arrival order.
SAME_DECISION_MS = 300


def paper_test_profile(directory: Path) -> Path:
    """The shipped paper-top50-local, cut to 5 coins, with an entry rule that trades at once.

    baseline -2000 bps makes every premium look stretched, so entries come within seconds and the
    short max hold closes them: a loss-making rule on purpose, to exercise every hop quickly.
    """
    raw = yaml.safe_load((REPO / "config/profiles/paper-top50-local.yaml").read_text())
    raw["name"] = "paper-top5-test-local"
    raw["universe"] = {"top_n": 5}
    raw["strategy"].update({"mode": "absolute", "baseline_bps": -2000.0, "max_hold_ms": 5000, "cooldown_ms": 1000})
    raw["outputs"]["kpi_checkpoint_s"] = 3
    raw["metrics"] = {"port": free_port()}
    raw["alerts"] = {"log_file": str(directory / "alerts.log")}
    raw["storage"]["url"] = f"sqlite:///{directory / 'trades.db'}"
    path = directory / "paper-top5-test-local.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(url: str) -> dict[str, float]:
    """Prometheus text -> {series: value} (labels kept in the key)."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


def wait_for(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout}s")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def sigterm_run(tmp_path_factory):
    """One real run, stopped by SIGTERM after TRADE_SECONDS of trading."""
    tmp = tmp_path_factory.mktemp("paper")
    profile = paper_test_profile(tmp)
    out, rec = tmp / "out", tmp / "rec"
    proc = subprocess.Popen([sys.executable, "main.py", "--profile", str(profile), "--speed", str(SPEED), "--out", str(out),
                             "--record", str(rec), "--no-progress"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "RAY_ADDRESS": ""})
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("*/running.json")):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"paper run never started: {proc.communicate(timeout=30)}")
            time.sleep(0.2)
        checkpoint = next(out.glob("*/running.json")).parent / "kpi.json"
        running = json.loads(next(out.glob("*/running.json")).read_text())
        dashboard_actors = ray_dashboard_actors(running["ray_dashboard"])
        time.sleep(TRADE_SECONDS)
        metrics = scrape(running["metrics_url"])
        checkpoint_doc = json.loads(checkpoint.read_text()) if checkpoint.exists() else None
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    run_dir = next(out.glob("*/running.json")).parent
    return {"rc": proc.returncode, "stderr": stderr, "run_dir": run_dir, "profile": profile,
            "checkpoint": checkpoint_doc, "dashboard_actors": dashboard_actors, "metrics": metrics,
            "alerts_log": tmp / "alerts.log", "kpi": json.loads((run_dir / "kpi.json").read_text()),
            "running": json.loads((run_dir / "running.json").read_text())}


def test_sigterm_stops_gracefully_with_kpis_written_and_exit_0(sigterm_run):
    assert sigterm_run["rc"] == 0, sigterm_run["stderr"][-3000:]
    kpi = sigterm_run["kpi"]
    assert kpi["mode"] == "paper" and kpi["exit_code"] == 0 and kpi["checkpoint"] is False
    assert kpi["round_trips"] > 0 and kpi["entries"] >= kpi["round_trips"]
    assert kpi["universe"] == sorted(sigterm_run["running"]["coins"]) and len(kpi["universe"]) == 5
    for feed in kpi["feeds"].values():
        assert feed["updates"] > 50 and feed["malformed"] == 0
    # the same fields as a backtest's KPI file
    for field in ("run_id", "profile", "started_at", "ended_at", "duration_s", "config_digest", "wins", "losses",
                  "win_rate_pct", "pnl_krw", "pnl_usd", "initial_equity_krw", "final_equity_krw", "roi_pct",
                  "exit_reasons", "fees_paid_krw", "slippage_bps_avg", "max_drawdown_pct",
                  "tick_to_decision_ms_avg", "tick_to_decision_ms_p99", "guard_triggers", "cpu_pct", "max_rss_mb"):
        assert field in kpi, field
    trades = (sigterm_run["run_dir"] / "trades.jsonl").read_text().splitlines()
    assert sum(json.loads(t)["type"] == "round_trip" for t in trades) == kpi["round_trips"]


def ray_dashboard_actors(url: str) -> dict[str, str]:
    """Actor name -> state, as the Ray dashboard's state API lists them (token auth as Ray sets it up)."""
    token_file = Path.home() / ".ray" / "auth_token"
    headers = {"Authorization": f"Bearer {token_file.read_text().strip()}"} if token_file.exists() else {}
    deadline = time.monotonic() + 30
    while True:
        try:
            req = urllib.request.Request(f"{url}/api/v0/actors?limit=1000", headers=headers)
            rows = json.load(urllib.request.urlopen(req, timeout=5))["data"]["result"]["result"]
            return {r["name"]: r["state"] for r in rows if r.get("name")}
        except (OSError, KeyError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_the_ray_dashboard_lists_every_actor_alive_while_it_runs(sigterm_run):
    listed = sigterm_run["dashboard_actors"]
    for role in sigterm_run["running"]["actors"]:
        name = f"{role}@{sigterm_run['running']['run_id']}"
        assert listed.get(name) == "ALIVE", (name, listed)
    assert {"alerts", "metrics"} <= set(sigterm_run["running"]["actors"])


def test_metrics_are_scraped_over_http_while_it_runs(sigterm_run):
    m = sigterm_run["metrics"]
    assert m['arb_book_updates_total{venue="upbit"}'] > 50 and m['arb_book_updates_total{venue="binance"}'] > 50
    assert m['arb_hop_latency_seconds_count{hop="feed_to_strategy"}'] > 50
    assert m['arb_hop_latency_seconds_count{hop="feed_to_order"}'] >= 1
    assert m["arb_round_trips_total"] >= 1 and "arb_pnl_krw" in m and "arb_open_positions" in m


def test_orders_fills_and_round_trips_reach_the_database_once(sigterm_run):
    import sqlite3
    db = sqlite3.connect(sigterm_run["profile"].parent / "trades.db")
    run_id = sigterm_run["kpi"]["run_id"]
    count = {t: db.execute(f"select count(*) from {t} where run_id = ?", (run_id,)).fetchone()[0]
             for t in ("orders", "fills", "round_trips")}
    rows = [json.loads(x) for x in (sigterm_run["run_dir"] / "trades.jsonl").read_text().splitlines()]
    assert count == {"orders": sum(r["type"] == "order" for r in rows), "fills": sum(r["type"] == "fill" for r in rows),
                     "round_trips": sigterm_run["kpi"]["round_trips"]}


def test_alerts_reach_the_log_file(sigterm_run):
    lines = [json.loads(x) for x in sigterm_run["alerts_log"].read_text().splitlines()]
    closed = [a for a in lines if a.get("kind") == "round_trip"]
    assert closed and len(closed) <= sigterm_run["kpi"]["round_trips"]


def test_a_kpi_checkpoint_is_written_while_running(sigterm_run):
    doc = sigterm_run["checkpoint"]
    assert doc is not None, "no KPI checkpoint within the run (period 3 s)"
    assert doc["checkpoint"] is True and doc["exit_code"] is None and doc["mode"] == "paper"


def test_the_recorded_books_replay_through_the_backtest_engine_to_the_same_decisions(sigterm_run):
    kpi = sigterm_run["kpi"]
    recorded = Path(kpi["recorded_to"])
    assert file_info(recorded).synthetic, "a recording of SYNTHETIC books must say so"
    profile = load_profile(str(sigterm_run["profile"]))
    balances = {(v, a): x for v, a, x in sigterm_run["running"]["starting_balances"]}
    engine = build_engine(profile, list(sigterm_run["running"]["coins"]), balances)
    recorded_books = set()
    for book in read_books(recorded):
        recorded_books.add((book.venue, book.symbol))
        engine.on_book(book)
    engine.finish()
    paper = [json.loads(t) for t in (sigterm_run["run_dir"] / "trades.jsonl").read_text().splitlines()]
    paper_rts = [r for r in paper if r["type"] == "round_trip"]
    replay_rts = list(engine.portfolio.round_trips)
    pairs = match_round_trips(paper_rts, replay_rts)
    rate = len(pairs) / max(len(paper_rts), len(replay_rts))
    print(f"real-time paper vs backtest of its recording: {len(pairs)} of {len(paper_rts)} paper / "
          f"{len(replay_rts)} replayed round trips match ({rate:.0%})")
    # No floor on the rate, nor on which coins the replay trades: both follow the real-time timing (which
    # book a fill met, which guard bound first), from 100% on a quiet machine to 23-46% under load average
    # 15-40; exact parity is tests/actors/test_lockstep_parity.py. The recording itself must be whole:
    # both venues' books of every coin the paper run traded, and a replay of it that trades.
    traded = {p["symbol"] for p in paper_rts}
    assert replay_rts and traded
    missing = {(v, c) for c in traded for v in ("upbit", "binance")} - recorded_books
    assert not missing, f"the recording lacks the books of {sorted(missing)}"


def match_round_trips(paper: list[dict], replay: list) -> list[tuple[dict, object]]:
    """Pair each paper round trip with an unused replay one: same symbol, direction and exit reason,
    entry and exit within SAME_DECISION_MS of book time."""
    pairs, used = [], set()
    for p in paper:
        for i, r in enumerate(replay):
            if (i not in used and r.symbol == p["symbol"] and r.direction.value == p["direction"]
                    and r.exit_reason == p["exit_reason"]
                    and abs(r.entry_ts_ms - p["entry_ts_ms"]) <= SAME_DECISION_MS
                    and abs(r.exit_ts_ms - p["exit_ts_ms"]) <= SAME_DECISION_MS):
                pairs.append((p, r))
                used.add(i)
                break
    return pairs
