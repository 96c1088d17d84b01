"""A live start against the simulator: armed, it places signed orders the simulator accepts and
reconciles them; any single missing or wrong arming condition refuses before one byte reaches a venue."""
from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import pytest

from domain.orders import Direction, OrderIntent, Purpose
from live.arming import ACK, API_KEYS, ARMED_AT, PER_ORDER_CAP, TOTAL_CAP, LiveRefused
from live.session import PreflightFailed, open_session
from sim import SimThread
from sim.auth import ApiKey
from tests.live.live_runs import ACK_TEXT, changed
from tests.live.sim_venues import FAST, key_env, sim_profile
from tests.sim.support import BALANCES, recorded_books

SECRET = "session-test-secret-0123456789abcdef012345"
GOOD = ApiKey("session-good-key-0001", SECRET)
WITHDRAW = ApiKey("session-withdraw-key-01", SECRET, can_withdraw=True)


@pytest.fixture(scope="module")
def sim(data: Path):
    balances = {(v, k.key): dict(BALANCES[(v, "sim-test-key")]) for k in (GOOD, WITHDRAW)
                for v in ("upbit", "binance", "binance_usdm")}
    thread = SimThread(recorded_books(data), keys=[GOOD, WITHDRAW], balances=balances)
    thread.start()
    seen: set[str] = set()
    while seen != {"upbit", "binance", "binance_usdm"}:
        seen.add(thread.step().venue)
    yield thread
    thread.stop()


def armed_env(key: ApiKey = GOOD, **changes: str | None) -> dict[str, str]:
    return changed({**key_env(key.key, SECRET), "ARB_LIVE_ACK": ACK_TEXT, "ARB_LIVE_ARMED_AT": str(int(time.time()))},
                   changes)


def start(sim, tmp_path: Path, env: dict, **profile_update):
    profile = sim_profile(sim.urls(), tmp_path, **profile_update)
    return open_session(profile, env, "session-test", backoff=FAST, rate_limit=False, out_dir=tmp_path / "run")


def test_an_armed_start_trades_signed_orders_and_reconciles(sim, tmp_path: Path) -> None:
    async def scenario() -> None:
        session = await start(sim, tmp_path, armed_env())
        try:
            desk = session.desk
            assert session.arming.armed and session.preflight.ok
            assert (tmp_path / "run" / "preflight.json").exists()
            board = sim.server.board
            desk.on_books([board.book("upbit", "BTC"), board.book("binance", "BTC")])
            before = len(sim.journal("order"))
            # 0.01 BTC is ~1.6M KRW: the armed per-order cap (100,000 KRW) cuts the entry down
            await desk.submit(OrderIntent("BTC-p1-entry", "BTC", desk.now, Purpose.ENTRY, Direction.RICH,
                                          0.01, 0.003, "test", "BTC-p1"))
            placed = [e for e in sim.journal("order")[before:] if e["event"] == "new"]
            assert [(e["venue"], e["side"]) for e in placed] == [("upbit", "sell"), ("binance", "buy")]
            assert all(e["qty"] * 159_000_000 < 105_000 for e in placed if e["venue"] == "upbit")
            assert [n.kind for n in desk.take_news()] == ["opened"]
            report = await desk.reconcile()
            assert report.ok, report
        finally:
            await session.close()
    asyncio.run(asyncio.wait_for(scenario(), 60))


REFUSALS = [
    (ACK, {"ARB_LIVE_ACK": None}, {}),
    (ACK, {"ARB_LIVE_ACK": "yes"}, {}),
    (ARMED_AT, {"ARB_LIVE_ARMED_AT": None}, {}),
    (ARMED_AT, {"ARB_LIVE_ARMED_AT": str(int(time.time()) - 11 * 60)}, {}),
    (ARMED_AT, {"ARB_LIVE_ARMED_AT": str(int(time.time()) + 3600)}, {}),
    (ARMED_AT, {"ARB_LIVE_ARMED_AT": "soon"}, {}),
    (PER_ORDER_CAP, {}, {"max_order_notional_krw": 5_000.0}),
    (TOTAL_CAP, {}, {"max_total_notional_krw": 50_000_000.0}),
    (TOTAL_CAP, {}, {"max_order_notional_krw": 400_000.0, "max_total_notional_krw": 300_000.0}),
    (API_KEYS, {"ARB_UPBIT_ACCESS_KEY": None, "ARB_UPBIT_SECRET_KEY": None}, {}),
    (API_KEYS, {"ARB_BINANCE_API_SECRET": None}, {}),
]


@pytest.mark.parametrize("condition,env_change,live_change", REFUSALS,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(REFUSALS)])
def test_each_failed_arming_condition_refuses_before_any_request(sim, tmp_path: Path, condition: str,
                                                                 env_change: dict, live_change: dict) -> None:
    profile = sim_profile(sim.urls(), tmp_path)
    live = profile.live.model_copy(update=live_change)   # caps a checked profile could not even load with
    before = dict(sim.server.requests)
    with pytest.raises(LiveRefused) as err:
        asyncio.run(open_session(profile.model_copy(update={"live": live}), armed_env(**env_change), "refused",
                                 backoff=FAST, rate_limit=False))
    assert [f.name for f in err.value.failures] == [condition]
    assert sim.server.requests == before, "not one request reached any venue"
    assert SECRET not in str(err.value)


def test_keys_from_a_tracked_secrets_file_refuse_to_arm(sim, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    secrets = repo / "secrets.yaml"
    secrets.write_text(f"upbit: {{api_key: {GOOD.key}, secret: {SECRET}}}\n"
                       f"binance: {{api_key: {GOOD.key}, secret: {SECRET}}}\n")
    os.chmod(secrets, 0o600)
    subprocess.run(["git", "-C", str(repo), "add", "secrets.yaml"], check=True)
    env = {k: v for k, v in armed_env().items() if not k.startswith(("ARB_UPBIT", "ARB_BINANCE"))}
    before = dict(sim.server.requests)
    with pytest.raises(LiveRefused) as err:
        asyncio.run(open_session(sim_profile(sim.urls(), tmp_path), {**env, "ARB_SECRETS_FILE": str(secrets)},
                                 "refused", backoff=FAST, rate_limit=False))
    assert [f.name for f in err.value.failures] == [API_KEYS] and "tracked by git" in str(err.value)
    assert sim.server.requests == before


def test_a_failed_preflight_refuses_the_start_and_places_nothing(sim, tmp_path: Path) -> None:
    orders = len(sim.journal("order"))
    with pytest.raises(PreflightFailed, match="binance.api_key .*withdrawals are ENABLED"):
        asyncio.run(start(sim, tmp_path, armed_env(WITHDRAW)))
    assert len(sim.journal("order")) == orders
    assert (tmp_path / "run" / "preflight.json").exists()
