"""The LiveCoordinator actor on the simulator, driven the way the strategy actors drive it (books in,
intent batches through `submit`): a leg the venue refuses is unwound with a real order, and each guard
tier blocks the entry it should, the block showing in the KPI fields, the metrics and the alert log.

One coordinator serves the module (an actor's worker takes seconds to start on a busy machine), so the
tests run in file order: the unwind first, on a coin the guard sequence does not use."""
from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import ray

from alerts.config import from_profile as alerts_from_profile
from config.schema import Universe
from domain.orders import Direction, OrderIntent, Purpose
from live.options import arming_env
from live.run import live_fields
from tests.live.live_runs import BINANCE, armed_env, free_port, new_orders, run_profile, secrets_file, start_sim
from tests.live.test_live_run import FAST
from tests.support.polling import poll

COINS = ("BTC", "ETH", "XRP", "SOL")
# Limits each tier's guard can reach in turn: BTC pauses after one loss (symbol); ETH may enter once an
# hour (route); an open ETH position leaves room for a small entry but not a full one on a venue
# (venue); one open position at a time (global).
RISK = {"max_consecutive_losses": 1, "max_route_trades_per_hour": 1, "max_venue_exposure_krw": 150_000.0,
        "max_open_positions": 1}


@dataclass
class Bench:
    sim: object
    tmp: Path
    metrics_url: str
    coordinator: object


@pytest.fixture(scope="module")
def bench(ray_cluster, tmp_path_factory):
    """A simulator stepped by hand (books hold still), metrics, an alert log, a strategy actor as the route,
    and one LiveCoordinator with its session open and the books in."""
    from actors.alert_dispatcher import AlertDispatcherActor
    from actors.live_coordinator import LiveCoordinator
    from actors.metrics_actor import MetricsActor
    from actors.strategy import SymbolStrategyActor
    tmp = tmp_path_factory.mktemp("live-coordinator")
    sim = start_sim(speed=None, coins=len(COINS))
    wanted = {("upbit", "USDT")} | {(v, c) for v in ("upbit", "binance") for c in COINS}
    missing = set(wanted)
    while missing:
        book = sim.step()
        missing.discard((book.venue, book.symbol))
    profile = run_profile(sim, tmp, risk=RISK, universe=Universe(symbols=COINS))
    params = profile.to_domain()
    metrics = MetricsActor.remote(free_port())
    alerts = AlertDispatcherActor.remote(alerts_from_profile(profile.alerts), None, None, metrics)
    # A real strategy actor takes the news; it holds no books, so it never decides by itself.
    strategy = SymbolStrategyActor.remote(list(COINS), params.strategy, params.market, params.fx, None)
    coordinator = LiveCoordinator.remote(list(COINS), params, {}, False, (metrics, alerts), profile=profile,
                                         run_id="coordinator-test", options=FAST,
                                         arming=arming_env(profile, armed_env(secrets_file(tmp))))
    try:
        ray.get(coordinator.set_peers.remote({c: strategy for c in COINS}, None))
        board = sim.server.board
        ray.get(coordinator.on_books.remote([board.book(v, c) for v, c in sorted(wanted)]))
        yield Bench(sim, tmp, ray.get(metrics.url.remote()), coordinator)
    finally:
        ray.get(coordinator.finish.remote())
        ray.get(alerts.close.remote())
        for handle in (coordinator, metrics, alerts, strategy):
            ray.kill(handle)
        sim.stop()


def desk(bench: Bench):
    return ray.get(bench.coordinator.checkpoint.remote())


def submit(bench: Bench, pid: str, coin: str, purpose: Purpose = Purpose.ENTRY, qty: float = 1.0) -> None:
    """One batch of one intent, as a strategy actor sends it (the armed cap cuts the size to 100,000 KRW)."""
    now = desk(bench).now
    ray.get(bench.coordinator.submit.remote(
        [OrderIntent(f"{pid}-{purpose.value}", coin, now, purpose, Direction.RICH, qty, 0.002, "test", pid)]))


def scrape(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


def alerts_of(bench: Bench, kind: str) -> list[dict]:
    path = bench.tmp / "alerts.log"
    lines = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    return [a for a in lines if a["kind"] == kind]


poll = partial(poll, timeout=10.0)


def test_a_leg_the_venue_refuses_is_unwound_with_a_real_order(bench):
    engine = bench.sim.server.engine
    usdt = engine.account("binance", BINANCE.key).free["USDT"]
    engine.fund("binance", BINANCE.key, "USDT", -(usdt - 10.0))   # the Binance buy is now refused
    try:
        before = len(new_orders(bench.sim))
        submit(bench, "SOL-p1", "SOL")
    finally:
        engine.fund("binance", BINANCE.key, "USDT", usdt - 10.0)
    placed = new_orders(bench.sim)[before:]
    assert [(e["venue"], e["side"], e["symbol"]) for e in placed] == [("upbit", "sell", "SOL"), ("upbit", "buy", "SOL")]
    assert bench.sim.journal("reject")[-1]["reason"] == "insufficient"
    now = desk(bench)
    pos = now.portfolio.positions["SOL-p1"]
    assert pos.state == "failed" and pos.held("upbit") == 0, "the Upbit leg was bought back"
    (rt,) = now.portfolio.round_trips
    assert rt.exit_reason == "failed_entry" and rt.leg_risk_krw > 0
    assert [o.purpose for o in now.trace.orders] == [Purpose.ENTRY, Purpose.ENTRY, Purpose.UNWIND]
    assert now.portfolio.stuck_legs == [] and not now.portfolio.risk.frozen
    refused = poll(lambda: alerts_of(bench, "order_refused"), what="the refused leg's alert")
    assert refused[0]["severity"] == "P1" and "InsufficientFunds" in refused[0]["message"]


# (what is sent, the guard and tier that block it; None: it trades)
SEQUENCE = [
    (("BTC-p1", "BTC", Purpose.ENTRY, 1.0), None),
    (("BTC-p1", "BTC", Purpose.EXIT, 1.0), None),                  # a loss: spread and four fees
    (("BTC-p2", "BTC", Purpose.ENTRY, 1.0), ("consecutive_losses", "symbol")),
    (("ETH-p1", "ETH", Purpose.ENTRY, 1.0), None),                 # stays open
    (("ETH-p2", "ETH", Purpose.ENTRY, 1.0), ("route_frequency", "route")),
    (("XRP-p1", "XRP", Purpose.ENTRY, 100.0), ("venue_exposure", "venue")),
    (("XRP-p2", "XRP", Purpose.ENTRY, 3.0), ("max_open_positions", "global")),   # ~12,000 KRW: fits the venue
]


def test_each_guard_tier_blocks_its_entry_in_the_kpi_fields_metrics_and_alerts(bench):
    for (pid, coin, purpose, qty), blocked in SEQUENCE:
        orders = len(new_orders(bench.sim))
        submit(bench, pid, coin, purpose, qty)
        decision = desk(bench).portfolio.decisions[-1]
        if blocked is None:
            assert len(new_orders(bench.sim)) > orders, f"{pid} {purpose.value} traded"
            continue
        assert len(new_orders(bench.sim)) == orders, f"{pid}: the blocked entry sent nothing"
        assert (decision.intent_id, decision.allowed, decision.guard, decision.tier) == (
            f"{pid}-entry", False, *blocked)
    assert live_fields(desk(bench))["guard_blocks_by_tier"] == {
        "symbol": {"consecutive_losses": 1}, "route": {"route_frequency": 1},
        "venue": {"venue_exposure": 1}, "global": {"max_open_positions": 1}}
    for (pid, _, _, _), blocked in SEQUENCE:
        if blocked is None:
            continue
        guard, tier = blocked
        poll(lambda: scrape(bench.metrics_url).get(f'arb_guard_triggers_total{{guard="{guard}"}}') == 1,
             what=f"the {guard} metric")
        alert = poll(lambda: [a for a in alerts_of(bench, "guard") if f"blocked {pid}-entry" in a["message"]],
                     what=f"the {guard} alert")
        assert alert[0]["severity"] == "P2" and alert[0]["message"].startswith(f"{tier} guard {guard} blocked")


def test_every_order_sent_is_counted_in_the_venue_metrics(bench):
    """arb_venue_events_total{event="orders_sent"} per venue: each create_order the simulator saw, taken or refused."""
    submit(bench, "SOL-m1", "SOL")
    for venue in ("upbit", "binance"):
        seen = len(new_orders(bench.sim, venue)) + len([e for e in bench.sim.journal("reject") if e["venue"] == venue])
        series = f'arb_venue_events_total{{event="orders_sent",venue="{venue}"}}'
        poll(lambda: scrape(bench.metrics_url).get(series) == seen,
             what=f"{series} == {seen} (scraped {scrape(bench.metrics_url).get(series)})")
        assert scrape(bench.metrics_url).get(f'arb_venue_events_total{{event="requests",venue="{venue}"}}') >= seen
