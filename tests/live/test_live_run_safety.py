"""Live run safety: every missing or wrong arming condition refuses before Ray or any connection, the
coordinator re-checks arming in its own process, and SIGUSR1 cancels and flattens against a simulator
that fails half the time."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import ccxt
import pytest
import ray

from live.arming import ACK, API_KEYS, ARMED_AT, PER_ORDER_CAP, TOTAL_CAP, LiveRefused
from live.options import arming_env
from live.run import run_live
from sim import ccxt_overrides
from tests.live.live_runs import (BINANCE, FUNDS, TRADE_AT_ONCE, UPBIT, armed_env, new_orders, run_profile,
                                  secrets_file, start_sim, wait_until)
from tests.live.test_live_run import FAST


@pytest.fixture(scope="module")
def sim():
    thread = start_sim()
    yield thread
    thread.stop()


REFUSALS = [
    (ACK, {"ARB_LIVE_ACK": None}, {}),
    (ACK, {"ARB_LIVE_ACK": "i understand this trades real money"}, {}),
    (ARMED_AT, {"ARB_LIVE_ARMED_AT": None}, {}),
    (ARMED_AT, {"ARB_LIVE_ARMED_AT": str(int(time.time()) - 11 * 60)}, {}),
    (ARMED_AT, {"ARB_LIVE_ARMED_AT": str(int(time.time()) + 3600)}, {}),
    (PER_ORDER_CAP, {}, {"max_order_notional_krw": 5_000.0}),
    (TOTAL_CAP, {}, {"max_total_notional_krw": 50_000_000.0}),
    (API_KEYS, {"ARB_SECRETS_FILE": None}, {}),
]


@pytest.mark.parametrize("condition,env_change,live_change", REFUSALS,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(REFUSALS)])
def test_each_failed_arming_condition_refuses_before_ray_or_any_connection(sim, tmp_path: Path, condition: str,
                                                                          env_change: dict, live_change: dict):
    ray_was_up = ray.is_initialized()
    actors_before = set(ray.util.list_named_actors()) if ray_was_up else set()
    requests_before = dict(sim.server.requests)
    profile = run_profile(sim, tmp_path, live=live_change)
    with pytest.raises(LiveRefused) as err:
        run_live(profile, 5, env=armed_env(secrets_file(tmp_path), **env_change), options=FAST)
    assert [f.name for f in err.value.failures] == [condition]
    assert sim.server.requests == requests_before, "not one request reached any venue"
    assert not (tmp_path / "runs").exists(), "no run was started"
    assert ray.is_initialized() == ray_was_up
    if ray_was_up:
        assert set(ray.util.list_named_actors()) == actors_before, "no actor was created"


def test_the_coordinator_arms_again_in_its_own_process_before_any_socket(ray_cluster, sim, tmp_path: Path):
    """The driver's check bypassed: the coordinator, given no acknowledgement, refuses on its own."""
    from actors.live_coordinator import LiveCoordinator
    profile = run_profile(sim, tmp_path)
    env = armed_env(secrets_file(tmp_path), ARB_LIVE_ACK=None)
    coordinator = LiveCoordinator.remote(["BTC", "ETH"], profile.to_domain(), {}, False, None,
                                         profile=profile, run_id="rearm-test", arming=arming_env(profile, env),
                                         options=FAST)
    before = dict(sim.server.requests)
    try:
        with pytest.raises(Exception, match=r"(?s)LiveStartRefused.*ack: ARB_LIVE_ACK is not set"):
            ray.get(coordinator.set_peers.remote({}, None))
        assert sim.server.requests == before
    finally:
        ray.kill(coordinator)


def _balances(sim, venue: str, key: str) -> dict[str, float]:
    account = sim.server.engine.account(venue, key)
    return {a: account.free.get(a, 0.0) + account.locked.get(a, 0.0) for a in set(account.free) | set(account.locked)}


def test_sigusr1_cancels_and_flattens_while_the_venues_fail_half_the_time(ray_cluster, tmp_path: Path):
    sim = start_sim()
    try:
        # one position at a time, held until the kill
        profile = run_profile(sim, tmp_path, strategy={**TRADE_AT_ONCE, "max_hold_ms": 600_000},
                              risk={"max_open_positions": 1})
        run_dir = tmp_path / "runs"
        stray: dict = {}

        def operator() -> None:
            wait_until(lambda: len([e for e in new_orders(sim) if e["client_id"]]) >= 2, 120, "an entry on both venues")
            time.sleep(1.0)   # the entry's fills are booked; the position is open
            # a resting order on the account (placed by hand): the kill switch must cancel it too
            upbit = ccxt.upbit({**ccxt_overrides(sim.urls(), "upbit"), "apiKey": UPBIT.key, "secret": UPBIT.secret})
            stray["order"] = upbit.create_order("BTC/KRW", "limit", "buy", 0.001, 100_000_000)
            for venue, status, after in (("upbit", 503, False), ("binance", 502, True)):
                sim.fault({"kind": "http_error", "venue": venue, "status": status, "fraction": 0.5, "after": after})
            os.kill(os.getpid(), signal.SIGUSR1)
            wait_until(lambda: next(run_dir.glob("*/kill.json"), None), 90, "the kill switch's report")
            sim.fault({"kind": "clear"})

        handler_before = signal.getsignal(signal.SIGUSR1)
        helper = threading.Thread(target=operator, name="operator")
        helper.start()
        returned = run_live(profile, 120, env=armed_env(secrets_file(tmp_path)), handle_signals=True, options=FAST)
        helper.join(30)
        kpi = json.loads(Path(returned["output_dir"], "kpi.json").read_text())
        assert signal.getsignal(signal.SIGUSR1) == handler_before, "the run's signal handlers are gone again"
        (report,) = kpi["kill_reports"]
        assert report["ok"] and report["policy"] == "flatten" and report["reason"] == "operator signal (SIGUSR1)"
        assert json.loads(next(run_dir.glob("*/kill.json")).read_text()) == report
        (cancelled,) = report["cancelled"]   # its cancel may have lost its reply: then the listing confirms it
        assert cancelled.startswith(f"upbit {stray['order']['id']} BTC buy 0.001")
        assert len(report["closed"]) == 2, report   # both legs of the open pair traded back
        assert kpi["frozen"] == "operator signal (SIGUSR1)"
        faults = sim.journal("fault")
        assert {f["venue"] for f in faults} >= {"upbit", "binance"} and len(faults) >= 3
        # Flat again: each coin back where it started, less the coin Binance kept as its buy fee.
        traded = {o["symbol"] for o in new_orders(sim) if o["client_id"]}
        for coin in traded:
            assert _balances(sim, "upbit", UPBIT.key)[coin] == pytest.approx(FUNDS["upbit"][coin], abs=1e-7)
            assert _balances(sim, "binance", BINANCE.key)[coin] == pytest.approx(FUNDS["binance"][coin], abs=5e-5)
        assert sim.server.engine.open_orders("upbit", UPBIT.key) == []
    finally:
        sim.stop()
