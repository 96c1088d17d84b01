"""A whole live run as `python main.py --profile live-local` makes it: arming and preflight in the driver,
real Ray actors (feeds through ccxt.pro, strategy shards, the LiveCoordinator), real signed orders on the
loopback simulator, reconciled with it; then every output of the run scanned for the fake keys."""
from __future__ import annotations

import base64
import json
import threading
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
import ray
import redis

from live.backoff import Backoff
from live.options import LiveOptions
from live.run import run_live
from live.venue import client_order_id
from tests.live.live_runs import (BINANCE, TRADE_AT_ONCE, UPBIT, armed_env, free_port, new_orders, run_profile,
                                  secrets_file, start_sim, wait_until)

# Retries and reconciles at test pace; ccxt's client throttle off (loopback only).
FAST = LiveOptions(rate_limit=False, reconcile_s=1.0, backoff=Backoff(0.02, 2.0, 0.2, 6), kill_deadline_s=30.0)


def scrape(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


@pytest.fixture(scope="module")
def trading_run(ray_cluster, tmp_path_factory):
    """One live run trading at once (every symbol pauses after its first, losing, round trip: the symbol
    guard then blocks what follows); stopped once the guard has shown in the alerts."""
    tmp = tmp_path_factory.mktemp("live-run")
    sim = start_sim()
    try:
        profile = run_profile(sim, tmp, strategy=TRADE_AT_ONCE, risk={"max_consecutive_losses": 1},
                              metrics_port=free_port())
        stop, outcome = threading.Event(), {}

        def run() -> None:
            try:
                outcome["kpi"] = run_live(profile, 90, env=armed_env(secrets_file(tmp)), stop=stop, options=FAST)
            except BaseException as exc:   # surfaced by the test below
                outcome["error"] = exc

        thread = threading.Thread(target=run, name="live-run")
        thread.start()
        try:
            running = wait_until(lambda: outcome.get("error") or next((tmp / "runs").glob("*/running.json"), None),
                                 120, "the live run starting")
            assert not isinstance(running, BaseException), running
            alerts = tmp / "alerts.log"

            def paused() -> bool:
                return outcome.get("error") or (alerts.exists() and "consecutive_losses" in alerts.read_text())
            wait_until(paused, 60, "a round trip, then the symbol guard blocking the next entry")
            metrics = scrape(json.loads(running.read_text())["metrics_url"])
        finally:
            stop.set()
            thread.join(120)
        if "error" in outcome:
            raise outcome["error"]
        run_dir = running.parent
        yield {"kpi": json.loads((run_dir / "kpi.json").read_text()), "run_dir": run_dir, "tmp": tmp, "sim": sim,
               "metrics": metrics,
               "trades": [json.loads(x) for x in (run_dir / "trades.jsonl").read_text().splitlines()],
               "alerts": [json.loads(x) for x in alerts.read_text().splitlines()], "profile": profile}
    finally:
        sim.stop()


def test_an_armed_run_places_signed_orders_the_simulator_accepts_and_reconciles_them(trading_run):
    kpi, sim, trades = trading_run["kpi"], trading_run["sim"], trading_run["trades"]
    assert kpi["mode"] == "live" and kpi["exit_code"] == 0 and kpi["arming"]["armed"] and kpi["preflight"]["ok"]
    assert json.loads((trading_run["run_dir"] / "preflight.json").read_text())["ok"] is True
    assert kpi["round_trips"] >= 1 and kpi["entries"] >= 1
    # Every order the desk sent is one the simulator accepted under our client id, signed by our keys.
    journal = {e["client_id"]: e for e in new_orders(sim)}
    assert {e["key"] for e in journal.values()} == {UPBIT.key, BINANCE.key}
    orders = [t for t in trades if t["type"] == "order"]
    assert len(orders) == kpi["orders_sent"] == len(journal)
    fills = {t["order_id"]: t for t in trades if t["type"] == "fill"}
    done = {e["order_id"]: e for e in sim.journal("order") if e["event"] in ("filled", "canceled", "expired")}
    for order in orders:
        placed = journal[client_order_id(kpi["run_id"], order["order_id"])]
        assert (placed["venue"], placed["side"], placed["tif"]) == (order["venue"], order["side"], "IOC")
        assert fills[order["order_id"]]["qty"] == pytest.approx(done[placed["order_id"]]["filled_qty"])
    # Reconciled: the periodic checks ran, and the ledger equals the venues' balances at the end.
    assert kpi["reconciles"] >= 2 and kpi["last_reconcile"]["ok"], kpi["last_reconcile"]
    assert kpi["unresolved_orders"] == [] and kpi["degraded_venues"] == []
    assert set(kpi["venue_stats"]) == {"upbit", "binance"} and kpi["rate_limited_429"] == 0
    assert sum(s["orders_sent"] for s in kpi["venue_stats"].values()) == len(journal)


def test_the_run_leaves_its_desk_and_exposure_in_redis(trading_run):
    """What `main.py kill --run RUN_ID` reads after a crash: written after every change, the last one at the end."""
    from live.cli import run_exposures
    from snapshots.keys import key
    from snapshots.redis_store import RedisSnapshotStore
    kpi, url = trading_run["kpi"], trading_run["profile"].storage.redis_url
    store = RedisSnapshotStore(url)
    try:
        snap = store.get(key(kpi["run_id"], "coordinator", "main"))
    finally:
        store.close()
    assert snap is not None and snap.version >= kpi["round_trips"]
    desk = snap.payload["desk"]
    assert len(desk["portfolio"]["round_trips"]) == kpi["round_trips"]
    assert len(desk["trace"]["orders"]) == kpi["orders_sent"]
    assert sorted(snap.payload["sent"]) == sorted(o["order_id"] for o in trading_run["trades"] if o["type"] == "order")
    assert snap.payload["unresolved"] == []
    held = [[p["symbol"], v, q] for p in desk["portfolio"]["positions"] if p["state"] == "open"
            for v, q in p["coin"]]
    assert len(run_exposures(url, kpi["run_id"])) == sum(1 for _, _, q in held if float(q) != 0)


def test_the_symbol_guard_shows_in_the_kpi_json_metrics_and_alerts(trading_run):
    kpi = trading_run["kpi"]
    assert kpi["guard_blocks_by_tier"]["symbol"]["consecutive_losses"] >= 1
    assert kpi["guard_triggers"]["consecutive_losses"] == kpi["guard_blocks_by_tier"]["symbol"]["consecutive_losses"]
    assert trading_run["metrics"]['arb_guard_triggers_total{guard="consecutive_losses"}'] >= 1
    assert trading_run["metrics"]["arb_round_trips_total"] >= 1
    guards = [a for a in trading_run["alerts"] if a["kind"] == "guard"]
    assert guards and "symbol guard consecutive_losses blocked" in guards[0]["message"]
    logged = [t for t in trading_run["trades"] if t["type"] == "guard" and not t["allowed"]]
    assert ("symbol", "consecutive_losses") in {(t["tier"], t["guard"]) for t in logged}


def forms(value: str) -> set[str]:
    raw = value.encode()
    return {value, quote(value, safe=""), base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode().rstrip("=")}


FORBIDDEN = set().union(*(forms(v) for k in (UPBIT, BINANCE) for v in (k.key, k.secret)))


def test_no_output_of_the_live_run_holds_a_key(trading_run):
    tmp, run_id = trading_run["tmp"], trading_run["kpi"]["run_id"]
    texts = {str(p): p.read_text(errors="replace") for p in trading_run["run_dir"].iterdir() if p.is_file()}
    texts["alerts.log"] = (tmp / "alerts.log").read_text()
    assert {"kpi.json", "trades.jsonl", "running.json", "preflight.json"} <= {Path(p).name for p in texts}
    # The Ray session's logs: the coordinator's worker signed every request with the keys.
    logs = Path(ray._private.worker.global_worker.node.get_logs_dir_path())
    for path in logs.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            texts[str(path)] = path.read_bytes().decode(errors="replace")
    # Redis (the profile's database): whatever this run, or anything else, left there.
    client = redis.Redis.from_url(trading_run["profile"].storage.redis_url)
    for key in client.scan_iter(count=1000):
        value = client.dump(key) or b""
        texts[f"redis:{key!r}"] = key.decode(errors="replace") + value.decode(errors="replace")
    texts["kpi (returned)"] = json.dumps(trading_run["kpi"])
    assert any(f"arb:{run_id}:coordinator:main" in where for where in texts), "the run's snapshot was scanned"
    leaks = {where: [f for f in FORBIDDEN if f in text] for where, text in texts.items()}
    assert not {w: f for w, f in leaks.items() if f}, "a key or its encoding leaked"
    assert any(run_id in t for t in texts.values() if "redis:" not in t)   # the scan did read the run's files
    assert sum("live_coordinator" in w or "worker" in w for w in texts) >= 1, "the Ray worker logs were scanned"


def test_the_scan_finds_a_planted_key():
    planted = f"Authorization: Bearer {base64.b64encode(BINANCE.secret.encode()).decode()}"
    assert [f for f in FORBIDDEN if f in planted]
