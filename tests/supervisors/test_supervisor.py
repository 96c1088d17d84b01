"""Supervisor with real Ray actors and real Redis snapshots: killed (ray.kill, SIGKILL), hung and
silent actors come back with their state; a restart storm escalates (P0 alert, trading frozen and
honoured by the coordinator); a corrupt snapshot is refused and the previous good version used."""
from __future__ import annotations

import json
import os
import signal
import time
from functools import partial

import pytest
import ray
from ray.exceptions import RayActorError

from domain.state import export_engine
from snapshots import key
from snapshots.envelope import canonical_json
from supervisors.policy import RestartPolicy
from supervisors.supervisor import Supervisor
from tests.support.polling import poll
from tests.supervisors.desk_actor import AlertSink, build_engine, desk_factory, desk_setup

BATCH = 300


poll = partial(poll, timeout=60.0)   # restarts with back-off take their time


def restarted(sup, name: str, count: int):
    """The new handle once `name` has `count` restart records and is running again."""
    def check():
        status = ray.get(sup.status.remote())["actors"][name]
        if status["state"] == "running" and len(ray.get(sup.restart_records.remote())) >= count:
            return ray.get(sup.handle.remote(name))
        return None
    return poll(check, what=f"restart #{count} of {name}")


def report(sup, killed_at: dict[int, float]) -> list[dict]:
    """Print each restart's times (the figures the issue asks for) and return the records."""
    records = ray.get(sup.restart_records.remote())
    for i, rec in enumerate(records, 1):
        kill = f"; kill -> trading again {rec['trading_at'] - killed_at[i]:.3f} s" if i in killed_at else ""
        print(f"{rec['actor']} restart #{rec['attempt']} ({rec['cause'][:70]}): detected -> restarted "
              f"{rec['restarted_at'] - rec['detected_at']:.3f} s -> trading again {rec['death_to_trading_s']:.3f} s{kill}")
    return records


@pytest.fixture(scope="module")
def setup():
    return desk_setup()


@pytest.fixture(scope="module")
def config(setup):
    return setup[0]


@pytest.fixture(scope="module")
def batches(setup):
    books = setup[1]
    return [books[i:i + BATCH] for i in range(0, len(books), BATCH)]


def test_a_killed_desk_comes_back_with_its_state_and_ends_like_an_uninterrupted_run(ray_cluster, run_id, config,
                                                                                   batches):
    reference = build_engine(config)
    for batch in batches:
        for book in batch:
            reference.on_book(book)
    reference.finish()
    sup = Supervisor.options(name=f"{run_id}-sup").remote("kills", RestartPolicy(max_restarts=3, window_s=60))
    ray.get(sup.watch.remote("coordinator", desk_factory(f"{run_id}-desk", run_id, config), ready_method="trading"))
    desk = ray.get(sup.handle.remote("coordinator"))
    kills, killed_at = {3: "ray.kill", 6: "SIGKILL"}, {}
    for i, batch in enumerate(batches):
        if i in kills:
            before = ray.get(desk.state.remote())
            if kills[i] == "ray.kill":
                ray.kill(desk, no_restart=True)
            else:
                os.kill(ray.get(desk.pid.remote()), signal.SIGKILL)
            killed_at[len(killed_at) + 1] = time.time()
            desk = restarted(sup, "coordinator", len(killed_at))
            assert ray.get(desk.state.remote()) == before             # every position, order and fill is back
            print(f"restore inside the new actor: {ray.get(desk.stats.remote())['snapshot']['restore_ms']} ms")
        ray.get(desk.feed.remote(batch))
    assert json.loads(ray.get(desk.finish.remote())) == json.loads(canonical_json(export_engine(reference)))
    records = report(sup, killed_at)
    assert [r["attempt"] for r in records] == [1, 2]
    assert "killed by `ray.kill`" in records[0]["cause"] and records[1]["cause"].startswith("died")
    for rec in records:
        assert rec["detected_at"] <= rec["restarted_at"] <= rec["trading_at"]
    assert ray.get(desk.stats.remote())["restarts"] == 2
    ray.get(sup.stop.remote())


def test_hung_and_silent_actors_are_restarted_and_a_storm_escalates_once(ray_cluster, run_id, config, batches,
                                                                        tmp_path):
    log = tmp_path / "alerts.log"
    sink = AlertSink.remote(str(log))
    sup_name = f"{run_id}-sup"
    policy = RestartPolicy(max_restarts=2, window_s=300, ping_timeout_s=0.5, max_missed_pings=2)
    sup = Supervisor.options(name=sup_name).remote("storm", policy, alert=sink)
    ray.get(sup.watch.remote("coordinator", desk_factory(f"{run_id}-coord", run_id, config), freeze_method="freeze"))
    ray.get(sup.watch.remote("feed", desk_factory(f"{run_id}-feed", run_id, config, sup_name, heartbeat_s=0.05),
                             heartbeat_timeout_s=1.0))
    coordinator = ray.get(sup.handle.remote("coordinator"))
    ray.get(coordinator.feed.remote(batches[0]))

    feed = ray.get(sup.handle.remote("feed"))
    ray.get(feed.stop_heartbeat.remote())                       # alive and answering, but its work stopped
    feed = restarted(sup, "feed", 1)
    feed.block.remote(60)                                        # stuck in a call: pings queue behind it
    feed = restarted(sup, "feed", 2)
    causes = [r["cause"] for r in report(sup, {})]
    assert causes[0].startswith("hung: no heartbeat for") and causes[1] == "hung: 2 pings unanswered within 0.5 s"

    ray.kill(feed, no_restart=True)                              # a third death in the window: a storm
    poll(lambda: ray.get(sup.frozen.remote()), what="frozen flag")
    status = ray.get(sup.status.remote())
    reason = status["frozen"]
    assert reason.startswith("restart storm: feed died 3 times within 300 s (budget 2); last cause: died: ")
    assert status["actors"]["feed"] == {"state": "escalated", "restarts": 2, "last_cause": status["actors"]["feed"]["last_cause"]}
    with pytest.raises(RayActorError):                           # not restarted again
        ray.get(ray.get(sup.handle.remote("feed")).pid.remote())
    lines = poll(lambda: log.exists() and log.read_text().splitlines(), what="P0 line in the alert log")
    alert = json.loads(lines[0])
    assert (alert["severity"], alert["kind"], alert["source"]) == ("P0", "restart_storm", "supervisor:storm")
    assert alert["message"].startswith(reason) and alert["fields"]["frozen"] == "coordinator"
    # the coordinator honours the freeze: its kill switch blocks every entry from now on
    assert poll(lambda: ray.get(coordinator.stats.remote())["frozen"]) == reason
    blocked_before = ray.get(coordinator.stats.remote())["guards"].get("kill_switch", 0)
    for batch in batches[1:4]:
        ray.get(coordinator.feed.remote(batch))
    stats = ray.get(coordinator.stats.remote())
    assert stats["guards"]["kill_switch"] > blocked_before == 0
    assert len(ray.get(sup.escalation_log.remote())) == 1 and ray.get(sup.status.remote())["alerts_failed"] == 0
    ray.get(sup.stop.remote())


def test_a_corrupt_snapshot_is_refused_the_previous_good_one_used_and_no_good_one_escalates(
        ray_cluster, run_id, config, batches, redis_client):
    name = f"{run_id}-desk"
    sup = Supervisor.options(name=f"{run_id}-sup").remote("corrupt", RestartPolicy(max_restarts=2, window_s=300))
    ray.get(sup.watch.remote("coordinator", desk_factory(name, run_id, config), ready_method="trading"))
    desk = ray.get(sup.handle.remote("coordinator"))
    ray.get(desk.feed.remote(batches[0]))                        # version 2 (1 is the first start)
    good = ray.get(desk.state.remote())
    ray.get(desk.feed.remote(batches[1]))                        # version 3
    k = key(run_id, "desk", name)
    newest = redis_client.lindex(k, 0)
    redis_client.lset(k, 0, newest.replace(b'"now":', b'"now":9', 1))
    ray.kill(desk, no_restart=True)
    desk = restarted(sup, "coordinator", 1)
    assert ray.get(desk.state.remote()) == good
    problems = ray.get(desk.stats.remote())["snapshot"]["restore_problems"]
    assert len(problems) == 1 and problems[0].startswith("version 3 is corrupt: checksum mismatch")

    for i in range(redis_client.llen(k)):                        # now no version is intact
        redis_client.lset(k, i, b'{"version": 9, "truncat')
    ray.kill(desk, no_restart=True)
    poll(lambda: ray.get(sup.frozen.remote()), what="escalation after failed restores")
    reason = ray.get(sup.frozen.remote())
    assert reason.startswith("restart storm: coordinator died 3 times within 300 s (budget 2); last cause: "
                             "restart #2 failed at start: ")
    assert f"SnapshotError: snapshot {k}: none of the 3 kept versions is intact: " in reason
    assert ray.get(sup.status.remote())["actors"]["coordinator"]["state"] == "escalated"
    assert len(report(sup, {})) == 1                            # the failed restart is not a recovery
    ray.get(sup.stop.remote())
