"""Multi-node run (issue #4 item 5), in a process of its own: a process joins one Ray cluster only, and
the pytest session has its own. tests/actors/test_multinode.py starts it and checks its JSON output.

A Ray cluster on this machine (ray.cluster_utils.Cluster): a head and two worker nodes offering the
placement's worker resource. The lockstep paper replay of tests/actors/test_chaos.py (real actors,
ccxt.pro feeds, the loopback simulator, Redis snapshots, the Supervisor) runs with the supervisor on
the head and the coordinator, strategy shards and feeds spread over the workers (paper/placement.py).
After instant `--remove-at` the worker node that holds the coordinator is SIGKILLed
(Cluster.remove_node, not graceful: a lost machine, not a drained one); the supervisor restarts
its actors on the surviving worker from their snapshots and the replay goes on to the end.

    RAY_TMPDIR=/tmp/arbmn python -m tests.actors.multinode_run --run-id mn-1 --remove-at 51 --out out.json

Set RAY_TMPDIR to a directory of its own: Cluster writes the address of the cluster it starts to
$RAY_TMPDIR/ray/ray_current_cluster, where any other process's bare ray.init() would find it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()
REDIS_URL = "redis://127.0.0.1:6379/0"
SECONDS = 20           # of synthetic books: 180 instants, 9 round trips
# The GCS finds a dead node by health-checking each raylet: every second here, dead after 3 failed
# checks in a row (Ray's default, every 3 s and 5 failures, takes 15 s). A killed raylet refuses the
# check at once; a live but slow one keeps Ray's 10 s answer timeout, so load does not kill it.
HEALTH_CHECKS = {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}


@dataclass
class Scenario:
    profile: Any
    params: Any
    books: list
    coins: list[str]
    balances: dict


def scenario() -> Scenario:
    """The chaos test's stream and strategy (its no-chaos engine run is what the test compares with)."""
    from config.loader import load_profile
    from marketdata.synthetic import SyntheticConfig, SyntheticMarket
    from paper.run import seed_coins

    profile = load_profile("paper-top50-local")
    params = profile.to_domain()
    strat = replace(params.strategy, mode="absolute", baseline_bps=-2000.0, max_hold_ms=4000, cooldown_ms=1000)
    params = replace(params, strategy=strat)
    market = SyntheticMarket(SyntheticConfig(coins=4, days=SECONDS / 86_400, seed=11))
    coins = list(market.coins)
    prices = {c: float(px) * market.cal.ratio.mean for c, px in zip(coins, market.price_usdt)}
    balances = {(v, a): x for v, assets in profile.inventory.items() for a, x in assets.items()}
    balances.update(seed_coins(coins, prices, strat.order_notional_krw, ("upbit", "binance")))
    return Scenario(profile, params, list(market.books()), coins, balances)


def outcome(portfolio, trace) -> dict:
    """What must come out equal with and without the node loss, as JSON (Decimal balances as text)."""
    return {
        "round_trips": [[rt.position_id, rt.symbol, rt.direction.value, rt.entry_ts_ms, rt.exit_ts_ms,
                         rt.exit_reason, round(rt.pnl_krw, 4)] for rt in portfolio.round_trips],
        "orders": [o.order_id for o in trace.orders],
        "fills": [f.fill_id for f in trace.fills],
        "open_positions": [p.position_id for p in portfolio.open_positions()],
        "balances": sorted([venue, asset, str(value)] for (venue, asset), value in portfolio.ledger.balances.items()),
    }


def start_cluster(placement):
    """A head and two worker nodes on this machine; the driver joins it. Returns (cluster, {label: node})."""
    import ray
    from ray.cluster_utils import Cluster

    # no autoscaler monitor and no log monitor (nothing scales, logs stay in the session dir): fewer
    # processes to start on a 2-core machine
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False, "no_monitor": True, "include_log_monitor": False,
        "_system_config": HEALTH_CHECKS})
    workers = {f"worker-{i}": cluster.add_node(num_cpus=1, resources=placement.node_resources()) for i in (1, 2)}
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    cluster.wait_for_nodes()
    placement.check(ray.nodes())
    return cluster, workers


def drop_snapshots(run_id: str) -> int:
    """Delete the run's snapshot keys from Redis (the run id is the test's own); return how many."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        names = list(client.scan_iter(match=f"arb:{run_id}:*"))
        return client.delete(*names) if names else 0
    finally:
        client.close()


def node_labels(cluster, workers) -> dict[str, str]:
    return {cluster.head_node.node_id: "head", **{node.node_id: label for label, node in workers.items()}}


def where(actors, labels: dict[str, str]) -> dict[str, str]:
    """Each actor of the graph -> the node it runs on, from Ray's actor table."""
    from ray._private import state as gcs_state

    out = {}
    for name, handle in actors.handles().items():
        node = gcs_state.actors(handle._actor_id.hex())["Address"]["NodeID"]
        out[name] = labels.get(node, f"unknown node {node}")
    return out


def run(run_id: str, remove_at: int) -> dict:
    t0 = time.perf_counter()
    import ray
    import redis

    from domain.symbols import FX_SYMBOL
    from actors.persistence import Persist
    from paper import graph, lockstep
    from paper.placement import Placement
    from paper.run import PaperSource, Venues, load_universe
    from sim import SimThread, ccxt_overrides
    from supervisors.policy import RestartPolicy

    s = scenario()
    steps = lockstep.instants(s.books)
    if not 0 <= remove_at < len(steps) - 1:
        raise SystemExit(f"multinode_run: --remove-at {remove_at} must be an instant before the last of {len(steps)}")
    placement = Placement()
    t_cluster = time.perf_counter()
    cluster, workers = start_cluster(placement)
    labels = node_labels(cluster, workers)
    timings = {"imports_and_stream_s": t_cluster - t0, "cluster_start_s": time.perf_counter() - t_cluster}
    report: dict[str, Any] = {"run_id": run_id, "remove_at": remove_at, "instants": len(steps)}
    actors = None
    try:
        with SimThread(s.books, markets={"upbit": (*s.coins, FX_SYMBOL), "binance": tuple(s.coins),
                                         "binance_usdm": ()}) as sim:
            configs = {v: ccxt_overrides(sim.urls(), v) for v in ("upbit", "binance")}
            universe = load_universe(s.profile, Venues(configs, s.coins, {}, PaperSource("sim", True, ())))
            lockstep.prime(sim, s.books)
            t1 = time.perf_counter()
            actors = graph.start(s.params, universe, s.balances, configs, shard_size=2, flush_ms=0, clocked=True,
                                 tag=run_id, persist=Persist(REDIS_URL, run_id),
                                 policy=RestartPolicy(max_restarts=5, window_s=600, backoff_base_s=0.0),
                                 placement=placement)
            lockstep.wait_subscribed(actors, s.books)
            timings["graph_start_s"] = time.perf_counter() - t1
            report["placement_before"] = before = where(actors, labels)
            t2 = time.perf_counter()
            for n, (ts, group) in enumerate(steps):
                sim.advance_to(ts)
                lockstep.wait_received(actors, group)
                lockstep.step(actors, ts)
                if n == remove_at:
                    report["node_loss"] = lose_node(cluster, workers, actors, before, s.books)
                    report["placement_after"] = where(actors, labels)
            timings["replay_s"] = time.perf_counter() - t2
            client = redis.Redis.from_url(REDIS_URL)
            report["snapshot_keys"] = sorted(k.decode() for k in client.scan_iter(match=f"arb:{run_id}:*"))
            client.close()
            report["restarts"] = ray.get(actors.supervisor.restart_records.remote())
            _, _, desk = graph.stop(actors)
        report["paper"] = outcome(desk.portfolio, desk.trace)
    finally:
        t3 = time.perf_counter()
        if actors is not None and actors.supervisor is not None:
            ray.kill(actors.supervisor)
        ray.shutdown()
        cluster.shutdown()
        drop_snapshots(run_id)
    timings["shutdown_s"] = time.perf_counter() - t3
    timings["process_s"] = time.perf_counter() - STARTED
    report["timings"] = {k: round(v, 3) for k, v in timings.items()}
    return report


def lose_node(cluster, workers, actors, before: dict[str, str], books) -> dict:
    """SIGKILL the worker node holding the coordinator; wait until the supervisor has restarted each of
    its actors, rewire, resubscribe; return who was lost and how long each took, from the kill."""
    from paper import graph, lockstep
    from tests.actors.test_chaos import wait_restarted

    node = before["coordinator"]
    victims = sorted(name for name, label in before.items() if label == node)
    killed = time.time()
    cluster.remove_node(workers[node], allow_graceful=False)
    records = {name: wait_restarted(actors, name, 0) for name in victims}
    graph.rewire(actors)
    if any(name.startswith("feed-") for name in victims):
        lockstep.wait_subscribed(actors, books)
    resumed = time.time()
    per_actor = {name: {"detected_s": round(r["detected_at"] - killed, 3),
                        "restarted_s": round(r["restarted_at"] - killed, 3),
                        "trading_s": round(r["trading_at"] - killed, 3),
                        "death_to_trading_s": r["death_to_trading_s"]} for name, r in records.items()}
    return {"node": node, "victims": victims, "per_actor": per_actor,
            "kill_to_replay_resumed_s": round(resumed - killed, 3)}


def print_timings(report: dict) -> None:
    loss = report["node_loss"]
    print(f"multinode: lost {loss['node']} after instant {report['remove_at']} of {report['instants']}, "
          f"holding {', '.join(loss['victims'])}")
    for name, t in loss["per_actor"].items():
        print(f"  {name:<22} death detected {t['detected_s']:6.3f} s, restarted {t['restarted_s']:6.3f} s, "
              f"trading again {t['trading_s']:6.3f} s after the kill (supervisor: death -> trading "
              f"{t['death_to_trading_s']:.3f} s)")
    print(f"  replay resumed {loss['kill_to_replay_resumed_s']:.3f} s after the kill; "
          + ", ".join(f"{k} {v:.1f} s" for k, v in report["timings"].items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--remove-at", type=int, required=True, help="instant after which a worker node dies")
    parser.add_argument("--out", type=Path, required=True, help="JSON report")
    args = parser.parse_args(argv)
    report = run(args.run_id, args.remove_at)
    args.out.write_text(json.dumps(report, indent=1))
    print_timings(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
