"""Chaos in the infrastructure around the actors: Redis, PostgreSQL and the venue connections go away
during a lockstep paper replay (real Ray actors under the Supervisor, ccxt.pro feeds, the loopback
simulator, real Redis snapshots, the trade journal in real PostgreSQL). Each path runs through a
TcpProxy, so an outage is a cut of that path, never a restart of the shared servers. Whatever goes
away, the run must end with exactly the round trips, orders, fills and balances of the same stream
run by the in-process engine without chaos, and the database must hold every row of it once."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import pytest
import ray

from actors.persistence import Persist
from actors.trade_journal import TradeJournal, decision_id, journal_path
from domain.symbols import FX_SYMBOL
from paper import graph, lockstep
from paper.run import PaperSource, Venues, load_universe
from sim import SimThread, ccxt_overrides
from storage import TradeStore
from supervisors.policy import RestartPolicy
from tests.storage.conftest import PG_HOST, PG_PORT, pg_schema, pg_url  # noqa: F401 - pg_schema is a fixture
from tests.storage.scenario import Scenario, scenario
from tests.support.parity import assert_trades_like_the_engine
from tests.support.polling import poll
from tests.support.tcp_proxy import TcpProxy

SECONDS = 12             # ~110 instants, 6 round trips and a stuck leg: enough to trade through each outage
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
VENUES = ("upbit", "binance")
# A loaded 2-core machine answers pings slowly; only the deaths this test causes should restart actors.
POLICY = RestartPolicy(max_restarts=10, window_s=600, backoff_base_s=0.0, ping_timeout_s=5.0)


@pytest.fixture(scope="module")
def scen() -> Scenario:
    return scenario(seconds=SECONDS)


@pytest.fixture(scope="module")
def reference(scen):
    """The same stream through the in-process engine, without chaos."""
    return scen.run()


@dataclass
class Rig:
    """The running graph and the proxies in front of Redis, PostgreSQL and each venue."""

    sim: Any
    actors: Any
    books: list
    redis: TcpProxy
    pg: TcpProxy
    venues: dict[str, TcpProxy]
    store_url: str
    restarts: list[dict] = field(default_factory=list)

    def kill(self, name: str) -> dict:
        """Kill `name` for good; the Supervisor restarts it from its snapshot. Returns the restart record."""
        before = sum(r["actor"] == name for r in ray.get(self.actors.supervisor.restart_records.remote()))
        ray.kill(self.actors.handles()[name], no_restart=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            records = [r for r in ray.get(self.actors.supervisor.restart_records.remote()) if r["actor"] == name]
            if len(records) > before:
                graph.rewire(self.actors)
                self.restarts.append(records[-1])
                return records[-1]
            time.sleep(0.05)
        raise AssertionError(f"{name} not restarted in 60 s: {ray.get(self.actors.supervisor.status.remote())}")

    def journal(self, action: Callable[[Any], Any]) -> Any:
        """Run `action(journal)` inside the coordinator (Ray's __ray_call__: no test hook on the actor)."""
        return ray.get(self.actors.coordinator.__ray_call__.remote(lambda coordinator: action(coordinator.journal)))


def proxied(urls: dict, venue: str, port: int) -> dict:
    """The simulator's URLs for `venue` rewritten to go through the proxy listening on `port`."""
    sim_port = urls[venue]["rest"].split(":")[2].split("/")[0]
    return {name: ({k: v.replace(f":{sim_port}/", f":{port}/") for k, v in value.items()}
                   if isinstance(value, dict) else value) for name, value in urls.items()}


@contextmanager
def rig(scen: Scenario, run_id: str, schema: str) -> Iterator[Rig]:
    coins = scen.coins
    markets = {"upbit": (*coins, FX_SYMBOL), "binance": tuple(coins), "binance_usdm": ()}
    with TcpProxy(REDIS_HOST, REDIS_PORT) as redis_path, TcpProxy(PG_HOST, PG_PORT) as pg_path, \
            SimThread(scen.books, markets=markets) as sim:
        sim_port = int(sim.urls()["upbit"]["rest"].split(":")[2].split("/")[0])
        venues = {v: TcpProxy("127.0.0.1", sim_port) for v in VENUES}
        store_url = pg_url(schema, pg_path.port)
        actors = None
        try:
            configs = {v: ccxt_overrides(proxied(sim.urls(), v, venues[v].port), v) for v in VENUES}
            universe = load_universe(scen.profile, Venues(configs, coins, {}, PaperSource("sim", True, ())))
            lockstep.prime(sim, scen.books)
            actors = graph.start(scen.params, universe, scen.balances, configs, shard_size=2, flush_ms=0,
                                 clocked=True, tag=run_id, policy=POLICY, store_url=store_url,
                                 persist=Persist(f"redis://127.0.0.1:{redis_path.port}/0", run_id))
            lockstep.wait_subscribed(actors, scen.books)
            yield Rig(sim, actors, scen.books, redis_path, pg_path, venues, store_url)
        finally:
            if actors is not None:
                for handle in actors.handles().values():
                    ray.kill(handle)
            for proxy in venues.values():
                proxy.close()
            journal_path(store_url, run_id).unlink(missing_ok=True)


def replay(r: Rig, hooks: dict[int, Callable[[Rig], None]]) -> tuple[dict, Any, dict]:
    """The lockstep replay with `hooks[n](rig)` run after instant n; then the health report and the end."""
    for n, (ts, group) in enumerate(lockstep.instants(r.books)):
        r.sim.advance_to(ts)
        lockstep.wait_received(r.actors, group)
        lockstep.step(r.actors, ts)
        if n in hooks:
            hooks[n](r)
    health = graph.health(r.actors)
    feed_stats, _, desk = graph.stop(r.actors)
    return feed_stats, desk, health


def assert_stored_once(store, run_id: str, desk) -> None:
    """The database holds exactly the desk's orders, fills, round trips and guard decisions, once each."""
    assert [o.order_id for o in store.orders(run_id)] == \
        [o.order_id for o in sorted(desk.trace.orders, key=lambda o: (o.ts_ms, o.order_id))]
    assert store.fills(run_id) == sorted(desk.trace.fills, key=lambda f: (f.ts_ms, f.fill_id))
    assert store.round_trips(run_id) == sorted(desk.portfolio.round_trips, key=lambda t: (t.exit_ts_ms, t.position_id))
    assert sorted(d.decision_id for d in store.guard_decisions(run_id)) == \
        sorted(decision_id(d) for d in desk.portfolio.decisions)


def finish_journal(r: Rig, run_id: str, desk) -> dict:
    """After graph.stop: what finish() added to the desk goes in through a journal on the same run (it
    reads back what the coordinator stored and writes only the rest); the database must equal the desk."""
    journal = TradeJournal(r.store_url, run_id)
    try:
        journal.sync(desk)
        assert journal.finish("completed", 0, timeout_s=30), journal.stats()
        assert_stored_once(journal.store, run_id, desk)
        assert journal.store.run(run_id).status == "completed"
        return journal.stats()
    finally:
        journal.close()


def print_restarts(r: Rig) -> None:
    for rec in r.restarts:
        print(f"restart {rec['actor']}: death -> restarted {rec['restarted_at'] - rec['detected_at']:.3f} s "
              f"-> trading again {rec['death_to_trading_s']:.3f} s")


def test_redis_cut_then_coordinator_killed_loses_nothing(ray_cluster, scen, reference, run_id, pg_schema):
    seen: dict[str, Any] = {}

    def cut(r: Rig) -> None:
        r.redis.cut()

    def restore(r: Rig) -> None:
        seen["during"] = ray.get([r.actors.coordinator.snapshot_stats.remote()] +
                                 [h.snapshot_stats.remote() for h, _ in r.actors.strategies])
        r.redis.restore()

    def kill(r: Rig) -> None:
        seen["before_kill"] = ray.get(r.actors.coordinator.snapshot_stats.remote())
        seen["restart"] = r.kill("coordinator")
        seen["after_kill"] = ray.get(r.actors.coordinator.snapshot_stats.remote())

    with rig(scen, run_id, pg_schema) as r:
        feed_stats, desk, health = replay(r, {20: cut, 45: restore, 50: kill})
        journal = finish_journal(r, run_id, desk)
        print_restarts(r)
    coordinator, *shards = seen["during"]
    print(f"redis cut for 25 instants: coordinator snapshot writes failed {coordinator['writes_failed']}, "
          f"strategies {[s['writes_failed'] for s in shards]}; run snapshot success rate "
          f"{health['snapshot_success_rate_pct']}%; rows already in PostgreSQL at the end {journal['stored_at_start']}")
    assert coordinator["writes_failed"] >= 25 and all(s["writes_failed"] >= 25 for s in shards)
    assert "unreachable" in coordinator["last_error"]
    before = seen["before_kill"]                    # writes after the restore went through again
    assert before["writes_failed"] == coordinator["writes_failed"] and not before["dirty"]
    assert seen["after_kill"]["restored_version"] == before["last_version"]   # the newest, post-outage state
    assert 0 < health["snapshot_success_rate_pct"] < 100
    assert all(s["writes_failed"] >= 25 for s in health["snapshots"][1:])   # the strategies kept their count
    assert_trades_like_the_engine(desk, reference, min_round_trips=5)


def test_postgres_stopped_trading_goes_on_and_every_row_lands_once(ray_cluster, scen, reference, run_id, pg_schema):
    seen: dict[str, Any] = {}

    def kill_in_outage(r: Rig) -> None:
        seen["killed_with"] = r.journal(lambda j: j.stats())
        r.kill("coordinator")
        seen["restarted_with"] = r.journal(lambda j: j.stats())

    def restore(r: Rig) -> None:
        seen["before_restore"] = r.journal(lambda j: j.stats())
        r.pg.restore()

    def drained(r: Rig) -> None:
        assert r.journal(lambda j: j.flush(30)), r.journal(lambda j: j.stats())
        seen["drained"] = r.journal(lambda j: j.stats())
        reader = TradeStore(r.store_url, journal=False)
        try:
            assert_stored_once(reader, run_id, ray.get(r.actors.coordinator.checkpoint.remote()))
        finally:
            reader.close()

    with rig(scen, run_id, pg_schema) as r:
        last = len(lockstep.instants(scen.books)) - 1
        # Trading happens at instants 3-8, 40-55 and 88-103: the outage holds 40-55, the kill falls inside.
        feed_stats, desk, health = replay(r, {36: lambda r: r.pg.cut(), 50: kill_in_outage, 66: restore,
                                              last: drained})
        final = finish_journal(r, run_id, desk)
        print_restarts(r)
    killed, restarted, back, drained_stats = (seen["killed_with"], seen["restarted_with"], seen["before_restore"],
                                              seen["drained"])
    print(f"postgres cut for 30 instants: {killed['backlog']} writes buffered when the coordinator was killed, "
          f"{restarted['replayed_from_journal']} replayed from its journal by the new one, "
          f"{back['backlog']} buffered when the path came back, {drained_stats['held_through_outage']} held "
          f"through the outage and committed after it; rows written by finish(): {final['written']}")
    assert killed["outages"] == 1 and killed["backlog"] > 0 and killed["last_error"]
    assert restarted["replayed_from_journal"] == killed["backlog"] and restarted["readback"].startswith("skipped")
    assert back["backlog"] > restarted["replayed_from_journal"] and back["outages"] == 1
    assert drained_stats["backlog"] == 0 and drained_stats["held_through_outage"] >= back["backlog"]
    assert_trades_like_the_engine(desk, reference, min_round_trips=5)


def test_venue_connections_cut_feeds_reconnect_and_trade_on(ray_cluster, scen, reference, run_id, pg_schema):
    seen: dict[str, Any] = {}

    def cut_venues(r: Rig) -> None:
        feeds = r.actors.feeds
        symbols = {v: len(ray.get(feeds[v].subscribed.remote())) for v in VENUES}
        before = {v: ray.get(feeds[v].stats.remote()) for v in VENUES}
        for proxy in r.venues.values():
            proxy.cut()
        # Every stream has tried again against the refused port at least twice (backoff in between).
        poll(lambda: all(ray.get(feeds[v].stats.remote())["reconnects"] >= before[v]["reconnects"] + 3 * symbols[v]
                         for v in VENUES), 30.0, "feeds retrying while the venues are cut")
        seen["cut"] = {v: ray.get(feeds[v].stats.remote()) for v in VENUES}
        for proxy in r.venues.values():
            proxy.restore()
        # Back when Upbit has resent a snapshot per stream and Binance has re-synced each from REST.
        poll(lambda: ray.get(feeds["upbit"].stats.remote())["updates"] >= seen["cut"]["upbit"]["updates"] + symbols["upbit"]
             and ray.get(feeds["binance"].stats.remote())["unstamped"] >= seen["cut"]["binance"]["unstamped"]
             + symbols["binance"], 30.0, "feeds resubscribed after the cut")
        settle(r)
        ray.get([f.reset.remote() for f in feeds.values()])    # the resent snapshots are of an instant already done

    with rig(scen, run_id, pg_schema) as r:
        started = time.monotonic()
        feed_stats, desk, health = replay(r, {41: cut_venues})    # between two exits (trading at 40-55)
        print(f"venue cut: replay {time.monotonic() - started:.1f} s; feeds {feed_stats}")
        finish_journal(r, run_id, desk)
    assert all(s["reconnects"] >= 3 and s["malformed"] == 0 for s in feed_stats.values()), feed_stats
    assert_trades_like_the_engine(desk, reference, min_round_trips=5)


def settle(r: Rig, quiet_s: float = 0.3) -> None:
    """Until the feeds' counters stop moving for `quiet_s` (late resent snapshots are in)."""
    last, since = None, time.monotonic()
    while time.monotonic() - since < quiet_s:
        now = ray.get([f.stats.remote() for f in r.actors.feeds.values()])
        if now != last:
            last, since = now, time.monotonic()
        time.sleep(0.05)
