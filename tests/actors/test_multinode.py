"""Multi-node (issue #4 item 5): a run spread over a Ray cluster of a head and two worker nodes loses a
worker node mid-replay, with an entry leg in flight; the supervisor restarts that node's actors on the
surviving worker from their Redis snapshots, and the run ends with exactly the round trips, orders,
fills and balances of the same replay without the loss (the backtest engine). The cluster runs in
tests/actors/multinode_run.py, a process of its own (this session may hold its own Ray cluster)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from domain.engine import Engine
from paper import lockstep
from paper.placement import HEAD_RESOURCE, Placement
from tests.actors.multinode_run import drop_snapshots, outcome, scenario

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 300   # a bound for a hung run on a loaded 2-core machine, not a speed target


def test_placement_puts_the_supervisor_on_the_head_and_the_run_on_the_workers():
    p = Placement()
    assert p.options("supervisor@r1") == {"name": "supervisor@r1", "resources": {HEAD_RESOURCE: 0.001}}
    assert p.on_head("alerts@r1") and p.on_head("metrics")
    for name in ("coordinator@r1", "strategy-0@r1", "strategy-12@r1", "feed-upbit@r1", "feed-binance"):
        assert p.options(name) == {"name": name, "resources": {"arb_worker": 0.001}, "scheduling_strategy": "SPREAD"}
    assert p.node_resources() == {"arb_worker": 1000.0}


@pytest.mark.parametrize("name", ["trader@r1", "strategy-@r1", "feed@r1", "", "@r1"])
def test_placement_refuses_an_actor_it_does_not_know(name):
    with pytest.raises(ValueError, match=f"unknown actor '{name}'"):
        Placement().options(name)


def test_placement_refuses_a_cluster_with_nowhere_to_put_the_run():
    head = {"Alive": True, "Resources": {HEAD_RESOURCE: 1.0, "CPU": 1.0}}
    worker = {"Alive": True, "Resources": {"arb_worker": 1000.0, "CPU": 1.0}}
    Placement().check([head, worker])
    with pytest.raises(RuntimeError, match="no live worker node offers 'arb_worker'.*--resources"):
        Placement().check([head, {**worker, "Alive": False}])
    with pytest.raises(RuntimeError, match="no live head node"):
        Placement().check([worker])
    with pytest.raises(ValueError, match="worker_resource must name a custom resource"):
        Placement("node:__internal_head__")


@pytest.fixture
def run_id():
    rid = f"multinode-{uuid.uuid4().hex[:8]}"
    yield rid
    drop_snapshots(rid)   # the run drops them too; this covers a run that was killed


@pytest.fixture
def ray_tmpdir():
    """A Ray temp dir of the run's own: the cluster's address file must not be where a bare ray.init()
    of another process would find it (and short: Ray's socket paths live under it)."""
    path = tempfile.mkdtemp(prefix="arbmn-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def entry_in_flight(steps, orders) -> int:
    """The first instant from a quarter of the replay on after which an entry order is decided but not
    yet filled (the engine fills an order at its due time)."""
    for n in range(len(steps) // 4, len(steps) - 1):
        ts = steps[n][0]
        if any(o.purpose.value == "entry" and o.ts_ms <= ts < o.due_ms for o in orders):
            return n
    raise AssertionError("the stream has no instant with an entry leg in flight")


@pytest.mark.slow
def test_losing_a_worker_node_mid_run_loses_nothing(run_id, ray_tmpdir, tmp_path):
    s = scenario()
    engine = Engine(s.coins, s.params.strategy, s.params.risk, s.params.market, s.params.fx, dict(s.balances))
    for book in s.books:
        engine.on_book(book)
    engine.finish()
    steps = lockstep.instants(s.books)
    remove_at = entry_in_flight(steps, engine.trace.orders)

    out = tmp_path / "multinode.json"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = ray_tmpdir
    proc = subprocess.run([sys.executable, "-m", "tests.actors.multinode_run", "--run-id", run_id,
                           "--remove-at", str(remove_at), "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    print("\n" + proc.stdout[proc.stdout.find("multinode:"):])   # the restart timings (Ray's own output before)
    assert proc.returncode == 0, f"multinode_run exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    report = json.loads(out.read_text())

    before, after, loss = report["placement_before"], report["placement_after"], report["node_loss"]
    workers = {"worker-1", "worker-2"}
    run_actors = sorted(set(before) - {"supervisor"})
    assert before["supervisor"] == "head" and after["supervisor"] == "head"
    assert {before[a] for a in run_actors} == workers, f"the run was not spread over both workers: {before}"
    lost = loss["node"]
    assert lost == before["coordinator"] and loss["victims"] == sorted(a for a in run_actors if before[a] == lost)
    survivor = (workers - {lost}).pop()
    assert {after[a] for a in run_actors} == {survivor}, f"not every actor runs on {survivor}: {after}"
    assert sorted(r["actor"] for r in report["restarts"]) == loss["victims"], "restarts other than the lost node's"
    assert {f"arb:{run_id}:coordinator:main"} <= set(report["snapshot_keys"])

    want, got = outcome(engine.portfolio, engine.trace), report["paper"]
    assert len(want["round_trips"]) >= 6
    kill_ts = steps[remove_at][0]
    assert any(rt[3] > kill_ts for rt in want["round_trips"]), "no position is opened after the node loss"
    assert len(got["orders"]) == len(set(got["orders"])), "an order was sent twice"
    assert got["round_trips"] == want["round_trips"]
    assert got["orders"] == want["orders"]
    assert got["fills"] == want["fills"]
    assert got["open_positions"] == want["open_positions"]
    assert [(v, a, Decimal(x)) for v, a, x in got["balances"]] == [(v, a, Decimal(x)) for v, a, x in want["balances"]]
