"""Supervisor: a Ray actor that watches named actors, restarts a dead or hung one from its snapshot,
and escalates a restart storm (P0 alert, trading frozen) instead of looping.

Health of each watched actor, checked every `interval_s`:
- a ping (`ping_method`, default Ray's own `__ray_ready__`, which queues behind the actor's work):
  ActorDiedError means dead; `max_missed_pings` answers slower than `ping_timeout_s` in a row mean
  hung, unless Ray's actor table says DEAD (then it is dead);
- a heartbeat, for actors watched with `heartbeat_timeout_s`: the actor calls
  `supervisor.heartbeat.remote(name)` from its own work loop; silence longer than that is hung
  (an async actor can answer pings while its work has stopped).
A dead or hung actor is killed for good (ray.kill no_restart, which also frees its name) and
recreated by its factory, `factory(restarts) -> ActorHandle`, after the policy's back-off. The
factory builds the actor the same way as at the start; the actor restores itself from its latest
snapshot in its constructor (supervisors.snapshotting.Snapshotter), refusing to start empty when
`restarts > 0`. A constructor that fails (a snapshot it cannot restore) counts as another death.
"Trading again" is when `ready_method` (if given) returns a truthy value, else when the new actor
first answers. Each restart is recorded (detected, restarted, trading again) and printed.

When an actor would exceed its restart budget the supervisor stops restarting it, sets its frozen
flag (`frozen()`), calls `freeze_method(reason)` on every watched actor that has one (the
coordinator sets RiskState.frozen, which check_entry honours as the kill switch) and sends a P0
Alert to `alert`: an actor handle (`alert_method`, default "emit", called with [alert]), a callable,
or the name of an actor this supervisor watches (the alert dispatcher, whose handle changes when it
is restarted).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, RayError

from alerts.events import Alert, Severity
from supervisors.policy import RestartBudget, RestartPolicy
from supervisors.records import RestartRecord, short_cause

log = logging.getLogger("supervisors")

Factory = Callable[[int], Any]   # restarts so far (0 at the first start) -> ActorHandle


@dataclass
class Watched:
    """One supervised actor and what the supervisor knows of it."""

    name: str
    factory: Factory
    handle: Any
    ping_method: str
    ready_method: str | None
    freeze_method: str | None
    heartbeat_timeout_s: float | None
    budget: RestartBudget
    state: str = "running"          # running | restarting | escalated | stopped
    restarts: int = 0
    missed: int = 0
    last_heartbeat: float = field(default_factory=time.monotonic)
    last_cause: str = ""


def actor_table_state(handle: Any) -> str | None:
    """ALIVE, DEAD, RESTARTING... from Ray's actor table; None when it cannot be read.

    ray.util.state needs the dashboard's API server; without it the GCS table is read directly
    (the same data, through Ray's internal client).
    """
    actor_id = handle._actor_id.hex()
    try:
        from ray.util.state import get_actor
        info = get_actor(actor_id, timeout=1)
        if info is not None:
            return str(info.state)
    except Exception:  # noqa: BLE001 - no dashboard: fall back to the GCS table
        pass
    try:
        from ray._private import state as gcs_state
        return gcs_state.actors(actor_id).get("State")
    except Exception:  # noqa: BLE001 - unreadable: the caller decides on pings alone
        return None


@ray.remote(num_cpus=0, max_restarts=0)
class Supervisor:
    """Owns the handles of the actors it starts; restarts, records and escalates (see the module doc)."""

    def __init__(self, name: str = "supervisor", policy: RestartPolicy | None = None, alert: Any = None,
                 alert_method: str = "emit", interval_s: float = 0.1):
        if interval_s <= 0:
            raise ValueError(f"supervisor {name}: interval_s must be > 0, got {interval_s}")
        self.name = name
        self.policy = policy or RestartPolicy()
        self.alert, self.alert_method = alert, alert_method
        self.interval_s = interval_s
        self.watched: dict[str, Watched] = {}
        self.records: list[RestartRecord] = []
        self.escalations: list[dict] = []
        self.frozen_reason = ""
        self.alerts_failed = 0
        self._loop_task: asyncio.Task | None = None
        self._restarts: dict[str, asyncio.Task] = {}

    # -- control -----------------------------------------------------------------------------
    async def watch(self, name: str, factory: Factory, *, handle: Any = None, ping_method: str = "__ray_ready__",
                    ready_method: str | None = None, freeze_method: str | None = None,
                    heartbeat_timeout_s: float | None = None) -> None:
        """Supervise `name`: start it through `factory(0)` unless `handle` is given; returns once it answers."""
        if name in self.watched:
            raise ValueError(f"supervisor {self.name}: {name!r} is already watched")
        if not callable(factory):
            raise TypeError(f"supervisor {self.name}: factory for {name!r} must be callable, got {type(factory).__name__}")
        if heartbeat_timeout_s is not None and heartbeat_timeout_s <= 0:
            raise ValueError(f"supervisor {self.name}: heartbeat_timeout_s for {name!r} must be > 0")
        w = Watched(name, factory, handle if handle is not None else factory(0), ping_method, ready_method,
                    freeze_method, heartbeat_timeout_s, RestartBudget(self.policy))
        await asyncio.wait_for(self._call(w.handle, w.ping_method), self.policy.ready_timeout_s)
        await self._until_trading(w)
        w.last_heartbeat = time.monotonic()
        self.watched[name] = w
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._monitor())

    async def heartbeat(self, name: str) -> bool:
        """Called by a watched actor from its work loop; False when `name` is not watched here."""
        w = self.watched.get(name)
        if w is None:
            return False
        w.last_heartbeat = time.monotonic()
        return True

    def handle(self, name: str) -> Any:
        """The current handle of `name` (a new one after each restart)."""
        return self._get(name).handle

    def frozen(self) -> str:
        """Why trading is frozen ("" when it is not)."""
        return self.frozen_reason

    def status(self) -> dict:
        return {"frozen": self.frozen_reason, "alerts_failed": self.alerts_failed,
                "actors": {n: {"state": w.state, "restarts": w.restarts, "last_cause": w.last_cause}
                           for n, w in self.watched.items()}}

    def restart_records(self) -> list[dict]:
        return [r.to_dict() for r in self.records]

    def escalation_log(self) -> list[dict]:
        return list(self.escalations)

    async def stop(self, kill: bool = True) -> dict:
        """Stop watching (and kill the watched actors unless `kill` is False); return the status."""
        if self._loop_task is not None:
            self._loop_task.cancel()
        for task in self._restarts.values():
            task.cancel()
        for w in self.watched.values():
            if kill and w.state != "escalated":
                _kill(w.handle)
            w.state = "stopped"
        return self.status()

    # -- monitoring ----------------------------------------------------------------------------
    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                running = [w for w in self.watched.values() if w.state == "running"]
                verdicts = await asyncio.gather(*(self._check(w) for w in running))
                now = time.time()
                for w, cause in zip(running, verdicts):
                    if cause:
                        self._on_death(w, cause, now)
            except Exception:  # noqa: BLE001 - the watch must outlive any one bad check
                log.exception("supervisor %s: health check failed; watching on", self.name)

    async def _check(self, w: Watched) -> str:
        """'' when healthy, else why the actor must be restarted."""
        try:
            await asyncio.wait_for(self._call(w.handle, w.ping_method), self.policy.ping_timeout_s)
            w.missed = 0
        except ActorDiedError as error:
            return f"died: {short_cause(error)}"
        except (asyncio.TimeoutError, ActorUnavailableError):
            w.missed += 1
            if w.missed >= self.policy.max_missed_pings:
                if actor_table_state(w.handle) == "DEAD":
                    return "died (actor table says DEAD)"
                return f"hung: {w.missed} pings unanswered within {self.policy.ping_timeout_s} s"
        except RayActorError as error:
            return f"died: {short_cause(error)}"
        if w.heartbeat_timeout_s is not None:
            silent = time.monotonic() - w.last_heartbeat
            if silent > w.heartbeat_timeout_s:
                return f"hung: no heartbeat for {silent:.1f} s (limit {w.heartbeat_timeout_s} s)"
        return ""

    def _on_death(self, w: Watched, cause: str, detected_at: float) -> None:
        w.state, w.last_cause = "restarting", cause
        log.warning("supervisor %s: %s %s", self.name, w.name, cause)
        self._restarts[w.name] = asyncio.get_running_loop().create_task(self._recover(w, cause, detected_at))

    async def _recover(self, w: Watched, cause: str, detected_at: float) -> None:
        try:
            await self._restart(w, cause, detected_at)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - never leave an actor silently in "restarting"
            log.exception("supervisor %s: recovering %s failed", self.name, w.name)
            w.state, w.last_cause = "escalated", f"supervisor error while restarting after: {cause}"
            self.frozen_reason = self.frozen_reason or f"{w.name}: {w.last_cause}"

    async def _restart(self, w: Watched, cause: str, detected_at: float) -> None:
        """Recreate `w` until it trades again or its budget is spent (then escalate)."""
        while True:
            delay = w.budget.delay(time.time())
            if delay is None:
                await self._escalate(w, cause)
                return
            _kill(w.handle)              # hung or half-dead: make sure, and free its name
            await asyncio.sleep(delay)
            w.budget.spend(time.time())
            w.restarts += 1
            try:
                step = "factory"
                w.handle = w.factory(w.restarts)
                step = "start"
                await asyncio.wait_for(self._call(w.handle, w.ping_method), self.policy.ready_timeout_s)
                restarted_at = time.time()
                step = "trading"
                await self._until_trading(w)
            except Exception as error:  # noqa: BLE001 - whatever failed, it is one more failed restart
                if isinstance(error, asyncio.TimeoutError):
                    what = f"no answer within {self.policy.ready_timeout_s} s"
                elif isinstance(error, RayError):
                    what = short_cause(error)
                else:
                    what = f"{type(error).__name__}: {error}"
                cause = f"restart #{w.restarts} failed at {step}: {what}"
                w.last_cause = cause
                log.error("supervisor %s: %s %s", self.name, w.name, cause)
                continue
            record = RestartRecord(w.name, w.restarts, cause, detected_at, restarted_at, time.time())
            self.records.append(record)
            print(record.line(), flush=True)
            log.warning("%s", record.line())
            w.missed, w.last_heartbeat, w.state = 0, time.monotonic(), "running"
            return

    async def _until_trading(self, w: Watched) -> None:
        if w.ready_method is None:
            return
        deadline = time.monotonic() + self.policy.ready_timeout_s
        while not await self._call(w.handle, w.ready_method):
            if time.monotonic() > deadline:
                raise asyncio.TimeoutError(f"{w.name} not trading within {self.policy.ready_timeout_s} s")
            await asyncio.sleep(0.01)

    async def _escalate(self, w: Watched, cause: str) -> None:
        """Restart storm: no more restarts of `w`, trading frozen, a P0 alert out."""
        used = w.budget.used(time.time())
        reason = (f"restart storm: {w.name} died {used + 1} times within {self.policy.window_s:g} s "
                  f"(budget {self.policy.max_restarts}); last cause: {cause}")
        w.state = "escalated"
        _kill(w.handle)
        self.frozen_reason = self.frozen_reason or reason
        print(f"supervisor {self.name}: P0 {reason}; not restarting it; trading frozen", flush=True)
        log.critical("supervisor %s: %s; trading frozen", self.name, reason)
        frozen = []
        for other in self.watched.values():
            if other.freeze_method and other.state == "running":
                try:
                    getattr(other.handle, other.freeze_method).remote(reason)
                    frozen.append(other.name)
                except Exception as error:  # noqa: BLE001 - freeze the others regardless
                    log.error("supervisor %s: could not freeze %s: %s", self.name, other.name, error)
        alert = Alert(Severity.P0, "restart_storm", f"supervisor:{self.name}", None,
                      f"{reason}. Not restarting it; trading frozen.", int(time.time() * 1000),
                      {"actor": w.name, "restarts_in_window": used, "window_s": self.policy.window_s,
                       "frozen": ",".join(frozen)})
        self.escalations.append({**alert.to_dict(), "frozen_actors": frozen})
        self._send(alert)

    def _send(self, alert: Alert) -> None:
        """Hand the alert on; a failing destination is logged and counted, never raised."""
        if self.alert is None:
            return
        try:
            target = self._get(self.alert).handle if isinstance(self.alert, str) else self.alert
            if hasattr(target, self.alert_method):     # an actor handle (the AlertDispatcherActor)
                getattr(target, self.alert_method).remote([alert])
            else:
                target(alert)
        except Exception as error:  # noqa: BLE001
            self.alerts_failed += 1
            log.error("supervisor %s: could not send the P0 alert: %s", self.name, error)

    async def _call(self, handle: Any, method: str) -> Any:
        return await getattr(handle, method).remote()

    def _get(self, name: str) -> Watched:
        if name not in self.watched:
            raise KeyError(f"supervisor {self.name}: {name!r} is not watched (watching {sorted(self.watched)})")
        return self.watched[name]


def _kill(handle: Any) -> None:
    try:
        ray.kill(handle, no_restart=True)
    except Exception:  # noqa: BLE001 - already gone
        pass
