"""preflight_command and kill_command against the simulator: one test per preflight item, each proving it
catches its failure, plus the table, the JSON and the kill command."""
from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import ccxt
import pytest
from rich.console import Console

from config.loader import load_profile
from config.schema import Endpoint, Storage
from domain.venues import Venue
from live.backoff import Backoff
from live.cli import KnownState, kill_command, preflight_command
from live.killswitch import Exposure
from sim import SimThread, ccxt_overrides
from sim.auth import ApiKey
from tests.live.sim_venues import VENUE_NAMES, key_env, sim_profile
from tests.sim.support import BALANCES, recorded_books

SECRET = "cli-test-secret-0123456789abcdef0123456789"
KEYS = {name: ApiKey(f"cli-{name}-key-0001", SECRET) for name in ("good", "poor", "orders", "perp", "kill")}
KEYS["withdraw"] = ApiKey("cli-withdraw-key-0001", SECRET, can_withdraw=True)
KEYS["expired"] = ApiKey("cli-expired-key-0001", SECRET, expire_at="2020-01-01T00:00:00+09:00")


def funded(key: str, scale: float = 1.0) -> dict:
    return {(v, key): {a: q * scale for a, q in BALANCES[(v, "sim-test-key")].items()} for v in VENUE_NAMES}


@pytest.fixture(scope="module")
def sim(data: Path):
    balances = {}
    for name, key in KEYS.items():
        balances.update(funded(key.key, 1e-6 if name == "poor" else 1.0))
    thread = SimThread(recorded_books(data), keys=list(KEYS.values()), balances=balances)
    thread.start()
    seen: set[str] = set()
    while seen != set(VENUE_NAMES):
        seen.add(thread.step().venue)
    urls = thread.urls()
    book = thread.server.board.book("upbit", "BTC")
    client = ccxt.upbit({**ccxt_overrides(urls, "upbit"), "apiKey": KEYS["orders"].key, "secret": SECRET})
    client.create_order("BTC/KRW", "limit", "buy", 0.01, book.bids[-1][0])   # a resting order nobody knows
    usdm = ccxt.binanceusdm({**ccxt_overrides(urls, "binance_usdm"), "apiKey": KEYS["perp"].key, "secret": SECRET})
    usdm.create_order("BTC/USDT:USDT", "market", "sell", 0.01)                  # an open short nobody knows
    yield thread
    thread.stop()


def env_for(name: str) -> dict[str, str]:
    return key_env(KEYS[name].key, SECRET)


def profile_for(sim, tmp_path: Path, hedge: str = "inventory", **update):
    return sim_profile(sim.urls(), tmp_path, hedge, **update)


def preflight(profile, tmp_path: Path, env: dict, **kw) -> tuple[int, dict, str]:
    console = Console(record=True, width=200)
    code = preflight_command(profile, tmp_path / "out", env=env, console=console, rate_limit=False, **kw)
    doc = json.loads((tmp_path / "out" / "preflight.json").read_text())
    return code, doc, console.export_text()


def failures(doc: dict) -> dict[str, str]:
    return {c["name"]: c["detail"] for c in doc["checks"] if not c["ok"]}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthy_account_passes_every_check_prints_the_table_and_writes_json(sim, tmp_path: Path) -> None:
    code, doc, text = preflight(profile_for(sim, tmp_path), tmp_path, env_for("good"))
    assert code == 0 and doc["ok"] is True and doc["profile"] == "live-example", failures(doc)
    names = [c["name"] for c in doc["checks"]]
    assert names == ["api_keys"] + [f"{v}.{c}" for v in ("upbit", "binance")
                                    for c in ("connect", "clock", "api_key", "balance", "open_orders")] \
        + ["secrets_file", "redis", "database"]
    assert "Live preflight: PASSED" in text and "preflight live-example: PASSED" in text
    assert KEYS["good"].key not in json.dumps(doc) and KEYS["good"].key not in text


def test_connectivity_unreachable_venue_fails(sim, tmp_path: Path) -> None:
    port = closed_port()
    dead = {v: Endpoint(rest=f"http://127.0.0.1:{port}/{v}", ws=f"ws://127.0.0.1:{port}/{v}") for v in VENUE_NAMES}
    code, doc, _ = preflight(profile_for(sim, tmp_path, endpoints=dead), tmp_path, env_for("good"), timeout_s=5)
    assert code == 1
    assert {"upbit.connect", "binance.connect"} <= set(failures(doc))
    assert "NetworkError" in failures(doc)["binance.connect"] or "ExchangeNotAvailable" in failures(doc)["binance.connect"]


def test_connectivity_market_not_listed_fails(sim, tmp_path: Path) -> None:
    base = load_profile("live-example")
    profile = profile_for(sim, tmp_path, universe=base.universe.model_copy(update={"symbols": ("BTC", "ETH")}))
    code, doc, _ = preflight(profile, tmp_path, env_for("good"))
    assert code == 1 and failures(doc)["upbit.connect"] == "the venue does not list ETH/KRW"


def test_clock_skew_fails(sim, tmp_path: Path) -> None:
    sim.fault({"kind": "clock", "offset_ms": 5_000})
    try:
        code, doc, _ = preflight(profile_for(sim, tmp_path), tmp_path, env_for("good"))
    finally:
        sim.fault({"kind": "clock", "offset_ms": 0})
    failed = failures(doc)
    assert code == 1 and "skew +5" in failed["binance.clock"] and "Date header" in failed["upbit.clock"]


def test_invalid_key_fails(sim, tmp_path: Path) -> None:
    env = {**env_for("good"), "ARB_BINANCE_API_SECRET": "not-the-secret-" + "x" * 30}
    code, doc, _ = preflight(profile_for(sim, tmp_path), tmp_path, env)
    assert code == 1 and "AuthenticationError" in failures(doc)["binance.api_key"]
    assert "upbit.api_key" not in failures(doc)


def test_missing_keys_fail(sim, tmp_path: Path) -> None:
    env = {k: v for k, v in env_for("good").items() if not k.startswith("ARB_UPBIT")}
    code, doc, _ = preflight(profile_for(sim, tmp_path), tmp_path, env)
    assert code == 1 and "no API key pair for upbit" in failures(doc)["api_keys"]


def test_key_with_withdrawal_permission_fails(sim, tmp_path: Path) -> None:
    code, doc, _ = preflight(profile_for(sim, tmp_path), tmp_path, env_for("withdraw"))
    assert code == 1 and list(failures(doc)) == ["binance.api_key"]
    assert "withdrawals are ENABLED" in failures(doc)["binance.api_key"]


def test_expired_upbit_key_fails(sim, tmp_path: Path) -> None:
    code, doc, _ = preflight(profile_for(sim, tmp_path), tmp_path, env_for("expired"))
    assert code == 1 and list(failures(doc)) == ["upbit.api_key"] and "expired" in failures(doc)["upbit.api_key"]


def test_balances_short_of_the_inventory_fail(sim, tmp_path: Path) -> None:
    code, doc, _ = preflight(profile_for(sim, tmp_path), tmp_path, env_for("poor"))
    assert code == 1 and set(failures(doc)) == {"upbit.balance", "binance.balance"}
    assert "KRW free 100 < required 1e+06" in failures(doc)["upbit.balance"]


def test_unknown_open_order_fails_and_a_known_one_passes(sim, tmp_path: Path) -> None:
    code, doc, _ = preflight(profile_for(sim, tmp_path), tmp_path, env_for("orders"))
    assert code == 1 and "1 unknown open order(s)" in failures(doc)["upbit.open_orders"]
    order_id = failures(doc)["upbit.open_orders"].split(": ")[1].split()[0]
    known = KnownState(order_ids={Venue.UPBIT: frozenset({order_id})})
    code, doc, _ = preflight(profile_for(sim, tmp_path), tmp_path, env_for("orders"), known=known)
    assert code == 0, failures(doc)


def test_unknown_position_fails_and_a_known_one_passes(sim, tmp_path: Path) -> None:
    profile = profile_for(sim, tmp_path, hedge="perp")
    code, doc, _ = preflight(profile, tmp_path, env_for("perp"))
    assert code == 1 and list(failures(doc)) == ["binance_usdm.positions"]
    assert "BTC/USDT:USDT venue -0.01 vs ours 0" in failures(doc)["binance_usdm.positions"]
    code, doc, _ = preflight(profile, tmp_path, env_for("perp"), known=KnownState(positions={"BTC/USDT:USDT": -0.01}))
    assert code == 0, failures(doc)


def test_secrets_file_tracked_by_git_fails(sim, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    secrets = repo / "secrets.yaml"
    key = KEYS["good"].key
    secrets.write_text(f"upbit: {{api_key: {key}, secret: {SECRET}}}\nbinance: {{api_key: {key}, secret: {SECRET}}}\n")
    os.chmod(secrets, 0o600)
    subprocess.run(["git", "-C", str(repo), "add", "secrets.yaml"], check=True)
    code, doc, text = preflight(profile_for(sim, tmp_path), tmp_path, {"ARB_SECRETS_FILE": str(secrets)})
    failed = failures(doc)
    assert code == 1 and "tracked by git" in failed["secrets_file"] and "tracked by git" in failed["api_keys"]
    assert SECRET not in json.dumps(doc) and SECRET not in text


def test_redis_unreachable_fails(sim, tmp_path: Path) -> None:
    storage = Storage(url=f"sqlite:///{tmp_path / 't.db'}", redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    code, doc, _ = preflight(profile_for(sim, tmp_path, storage=storage), tmp_path, env_for("good"))
    assert code == 1 and list(failures(doc)) == ["redis"]


def test_database_unreachable_fails(sim, tmp_path: Path) -> None:
    storage = Storage(url=f"postgresql+psycopg2://postgres@127.0.0.1:{closed_port()}/test")
    code, doc, _ = preflight(profile_for(sim, tmp_path, storage=storage), tmp_path, env_for("good"))
    assert code == 1 and list(failures(doc)) == ["database"] and "OperationalError" in failures(doc)["database"]


def test_preflight_and_kill_refuse_a_profile_that_is_not_live(tmp_path: Path) -> None:
    console = Console(record=True, width=200)
    assert preflight_command("backtest-btc", tmp_path, env={}, console=console) == 2
    assert kill_command("backtest-btc", tmp_path, env={}, console=console) == 2
    assert "preflight is for live profiles" in console.export_text()
    assert not (tmp_path / "preflight.json").exists()


def test_kill_command_cancels_and_flattens_and_writes_its_report(sim, tmp_path: Path) -> None:
    urls = sim.urls()
    key = KEYS["kill"].key
    book = sim.server.board.book("binance", "BTC")
    spot = ccxt.binance({**ccxt_overrides(urls, "binance"), "apiKey": key, "secret": SECRET})
    resting = spot.create_order("BTC/USDT", "limit", "buy", 0.01, book.bids[-1][0])
    usdm = ccxt.binanceusdm({**ccxt_overrides(urls, "binance_usdm"), "apiKey": key, "secret": SECRET})
    usdm.create_order("BTC/USDT:USDT", "market", "buy", 0.02)
    profile = profile_for(sim, tmp_path, hedge="perp")
    console = Console(record=True, width=200)
    code = kill_command(profile, tmp_path / "kill", "flatten", env=env_for("kill"), console=console,
                        exposures=[Exposure(Venue.BINANCE, "BTC", -0.01)], retry=Backoff(0.01, 2.0, 0.05, 100),
                        rate_limit=False)
    doc = json.loads((tmp_path / "kill" / "kill.json").read_text())
    assert code == 0 and doc["ok"] is True and doc["policy"] == "flatten", doc
    assert doc["cancelled"] == [f"binance {resting['id']} BTC buy 0.01"]
    assert sorted(doc["closed"]) == ["binance BTC -0.01: buy 0.01", "binance_usdm BTC +0.02: sell 0.02"]
    assert usdm.fetch_positions() == [] or all(not p["contracts"] for p in usdm.fetch_positions())
    assert "Kill switch (flatten): DONE" in console.export_text()


def test_python_dash_m_live_runs_preflight_on_a_profile_file(sim, tmp_path: Path, monkeypatch) -> None:
    import yaml

    from live.__main__ import main
    profile = profile_for(sim, tmp_path).model_copy(update={"name": "live-sim-check"})
    path = tmp_path / "live-sim-check.yaml"
    path.write_text(yaml.safe_dump(profile.model_dump(mode="json"), sort_keys=False))
    for name, value in env_for("good").items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ARB_SECRETS_FILE", raising=False)
    assert main(["preflight", "--profile", str(path), "--out", str(tmp_path / "pf")]) == 0
    assert json.loads((tmp_path / "pf" / "preflight.json").read_text())["ok"] is True
    assert main(["kill", "--profile", str(path), "--policy", "freeze", "--out", str(tmp_path / "k")]) == 0
    assert json.loads((tmp_path / "k" / "kill.json").read_text())["policy"] == "freeze"
    assert main(["preflight", "--profile", "backtest-btc", "--out", str(tmp_path / "no")]) == 2


def test_kill_with_a_run_id_trades_back_what_the_crashed_runs_snapshot_held(sim, tmp_path: Path) -> None:
    """After a crash the spot legs are known only to the run's Redis snapshot: `kill --run` reads them."""
    import uuid

    from snapshots.keys import key
    from snapshots.redis_store import RedisSnapshotStore
    profile = profile_for(sim, tmp_path)
    run_id, store = f"live-crashed-{uuid.uuid4().hex[:8]}", RedisSnapshotStore(profile.storage.redis_url)
    try:
        # As actors.live_coordinator writes it: the open position's coin per venue (here: bought on Binance).
        store.put(key(run_id, "coordinator", "main"), {"exposure": [["binance", "BTC", 0.01]], "sent": {}})
        console = Console(record=True, width=200)
        code = kill_command(profile, tmp_path / "kill", "flatten", env=env_for("kill"), console=console,
                            retry=Backoff(0.01, 2.0, 0.05, 100), rate_limit=False, run_id=run_id)
        doc = json.loads((tmp_path / "kill" / "kill.json").read_text())
        assert code == 0 and doc["ok"], doc
        assert "binance BTC +0.01: sell 0.01" in doc["closed"]
        assert f"run {run_id} held ['binance BTC +0.01']" in console.export_text()
        # A run with no snapshot: the orders are still cancelled, but the kill cannot say it is done.
        console = Console(record=True, width=200)
        code = kill_command(profile, tmp_path / "kill2", "freeze", env=env_for("kill"), console=console,
                            retry=Backoff(0.01, 2.0, 0.05, 100), rate_limit=False, run_id=f"{run_id}-none")
        assert code == 1 and (tmp_path / "kill2" / "kill.json").exists()
        assert f"run {run_id}-none: no snapshot at arb:{run_id}-none:coordinator:main" in console.export_text()
    finally:
        for name in store.keys(f"arb:{run_id}"):
            store.delete(name)
        store.close()
