"""A stateful test actor built the way phase 2 wires the real ones: the domain Engine on synthetic
books, restored by a Snapshotter from real Redis in its constructor, snapshotting after each batch.

The crash hooks (pid for os.kill, a blocking call, a stalled heartbeat) live here in the tests,
not on production actors.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any

import ray

from alerts.destinations.log_file import LogFileDestination
from alerts.dispatcher import AlertDispatcherCore
from domain.engine import Engine
from domain.state import export_engine, restore_engine
from snapshots import RedisSnapshotStore, key
from snapshots.envelope import canonical_json
from supervisors.snapshotting import Snapshotter

REDIS_URL = "redis://127.0.0.1:6379/0"


def desk_setup() -> tuple[tuple, list]:
    """(engine arguments, books) of the synthetic leg-risk stream of tests/domain/test_state.py.

    Computed once by the driver and handed to each actor: a restart then costs a worker, the
    domain imports and the restore, not a calibration of the book generator.
    """
    from tests.domain.test_state import synthetic_setup   # driver only: it pulls in the generator
    params, strat, risk, market, coins, books, balances = synthetic_setup("unwind")
    return (coins, strat, risk, market, params.fx, balances), books


def build_engine(config: tuple) -> Engine:
    coins, strat, risk, market, fx, balances = config
    return Engine(list(coins), strat, risk, market, fx, dict(balances))


@ray.remote(num_cpus=0, max_restarts=0)
class DeskActor:
    """Coordinator-like: books in, orders and fills in the engine, a snapshot after each batch."""

    def __init__(self, run_id: str, restarts: int, name: str, config: tuple, supervisor: Any = None,
                 heartbeat_s: float = 0.0):
        self.engine = build_engine(config)
        self.snap = Snapshotter(RedisSnapshotStore(REDIS_URL), key(run_id, "desk", name),
                                lambda: export_engine(self.engine))
        if self.snap.restore(lambda doc: restore_engine(self.engine, doc), required=restarts > 0) is None:
            self.snap.changed(urgent=True)      # a first start: a crash before any change is restorable too
        self.restarts = restarts
        self.supervisor, self.name = supervisor, name
        self._beating = threading.Event()
        if heartbeat_s:
            self._beating.set()
            threading.Thread(target=self._beat, args=(heartbeat_s,), daemon=True).start()

    def _beat(self, every_s: float) -> None:
        while True:
            if self._beating.is_set():
                self.supervisor.heartbeat.remote(self.name)
            time.sleep(every_s)

    def feed(self, books: list) -> int:
        for book in books:
            self.engine.on_book(book)
        self.snap.changed(urgent=True)
        return len(self.engine.portfolio.round_trips)

    def trading(self) -> bool:
        return True

    def freeze(self, reason: str) -> None:
        """What the coordinator does on the supervisor's freeze: the kill switch the guards honour."""
        self.engine.portfolio.risk.frozen = reason
        self.snap.changed(urgent=True)

    def state(self) -> str:
        return canonical_json(export_engine(self.engine))

    def stats(self) -> dict:
        return {"restarts": self.restarts, "pid": os.getpid(), "snapshot": self.snap.stats(),
                "frozen": self.engine.portfolio.risk.frozen,
                "guards": dict(self.engine.portfolio.risk.triggers)}

    def finish(self) -> str:
        self.engine.finish()
        return canonical_json(export_engine(self.engine))

    # -- crash hooks ----------------------------------------------------------------------------
    def pid(self) -> int:
        return os.getpid()

    def block(self, seconds: float) -> None:
        time.sleep(seconds)

    def stop_heartbeat(self) -> None:
        self._beating.clear()


def desk_factory(name: str, run_id: str, config: tuple, supervisor_name: str = "", heartbeat_s: float = 0.0):
    """The factory a Supervisor calls: `restarts` -> a new named DeskActor restoring itself."""
    def make(restarts: int):
        supervisor = ray.get_actor(supervisor_name) if supervisor_name else None
        return DeskActor.options(name=name).remote(run_id, restarts, name, config, supervisor, heartbeat_s)
    return make


@ray.remote(num_cpus=0)
class AlertSink:
    """The alert dispatcher's core with its always-on log file destination, behind `emit` like the
    AlertDispatcherActor, so a P0 from the supervisor ends up as a line in a real file."""

    def __init__(self, log_path: str):
        self.core = AlertDispatcherCore([LogFileDestination(log_path)])

    def emit(self, alerts: list) -> int:
        for alert in alerts:
            self.core.submit(alert)
        self.core.flush()
        return len(alerts)
