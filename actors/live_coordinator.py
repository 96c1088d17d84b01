"""LiveCoordinator: the paper coordinator's routes, news and reporting around a LiveDesk, whose orders go
to the venues through ccxt.

An async actor: the desk awaits the venues' replies while books keep arriving. Ray must never retry a
call (max_task_retries=0, no retry_exceptions, no restarts): a retried submit would be a second order;
after a crash the next start reconciles with the venues instead.

The live session opens inside this process (ccxt clients cannot be pickled, and keys are loaded where
orders are signed) on the first `set_peers`, the call paper.graph.start waits for before any feed
exists: arming (checked again here, before any socket), the preflight and the venue clients are up
before the first book, and a refusal fails graph.start.

A resumed run (`resume=True`, same run id) restores the desk from the run's snapshot (live.resume): the
preflight expects the orders and USDT-M positions the snapshot knows, and the orders whose fate the crash
hid are looked up by client id before any new intent is taken (intents meanwhile are answered "rejected").
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import asdict
from typing import Any

import ray

from actors.book_channel import serves_books
from actors.coordinator import DeskHost
from domain.book import Book
from domain.orders import OrderIntent
from live.arming import LiveRefused
from live.resume import (ResumeRefused, RunSnapshot, books_needed, describe, export_run, mark_awaiting,
                         read_run_snapshot, restore_desk, resumed_intent)
from live.desk import LiveDesk
from live.options import LiveOptions
from live.redact import redact
from paper.desk import News
from snapshots.keys import key
from snapshots.redis_store import RedisSnapshotStore
from supervisors.snapshotting import Snapshotter
from metrics.registry import VENUE_EVENTS
from live.session import LiveSession, PreflightFailed, open_session

log = logging.getLogger("actors.live_coordinator")


class LiveStartRefused(RuntimeError):
    """The coordinator's own arming or preflight refused the session (plain text: it crosses Ray)."""


@ray.remote(num_cpus=0, max_restarts=0, max_task_retries=0)
@serves_books
class LiveCoordinator(DeskHost):
    """PortfolioRiskCoordinator's interface (on_books, submit, status, counters, checkpoint, finish) for live.

    Same first arguments; `balances` is unused: the ledger starts from what the venues hold. Live
    arguments: the profile, the run id, `arming` (live.options.arming_env: never a key) and options.
    `snapshots` (a Redis URL) writes the desk to `arb:{run_id}:coordinator:main` after every change, so
    a crash leaves what the run held (and before each order goes out). `resume` restores the desk from
    that snapshot (a crashed run started again); `started_ms` is when the run first started (its KPIs
    count from there). `persist` / `store_url` (the supervisor's restarts, the trade journal) are not
    supported live and must be None.
    """

    def __init__(self, symbols: list[str], params: Any, balances: dict, clocked: bool = False,
                 telemetry: tuple[Any, Any] | None = None, persist: Any = None, store_url: str | None = None, *,
                 profile: Any, run_id: str, arming: dict[str, str] | None = None,
                 options: LiveOptions | None = None, snapshots: str | None = None, resume: bool = False,
                 started_ms: int | None = None):
        if clocked:
            raise ValueError("LiveCoordinator: live books are not replayed in lockstep; clocked must be False")
        if persist is not None or store_url is not None:
            raise ValueError("LiveCoordinator: supervised restarts and the trade journal are not wired for live "
                             "(`snapshots` writes the state a crash leaves, `resume` starts from it)")
        if resume and snapshots is None:
            raise ValueError("LiveCoordinator: resume needs `snapshots`, the Redis URL the run's snapshot is in")
        self.snapshots, self.snap = snapshots, None
        self.symbols, self.params, self.profile, self.run_id = list(symbols), params, profile, run_id
        self.arming = dict(arming or {})
        self.options = options or LiveOptions()
        self.session: LiveSession | None = None
        self.desk: LiveDesk | None = None
        self._host(telemetry)
        self._desk_lock = asyncio.Lock()    # submits, reconciles and funding see the desk one at a time
        self._housekeeping: asyncio.Task | None = None
        self._alerts_sent = 0
        self._venue_counts: dict[str, dict[str, int]] = {}   # VenueStats as last reported to metrics
        self._kills_counted = 0
        self.resume, self.resumes = resume, 0          # resumes: how many times this run was resumed
        self.started_ms = int(time.time() * 1000) if started_ms is None else int(started_ms)
        self._awaiting: list[str] | None = None        # a resumed run's orders to settle before any intent
        self._fresh_books: set[tuple[str, str]] = set()
        self._next_settle = 0.0
        self._settle_lock = asyncio.Lock()
        self._resync_due = False

    # ---- start ----
    async def set_peers(self, routes: dict[str, Any], telemetry: tuple[Any, Any] | None = None) -> None:
        """Open the live session (arming, preflight, venues, desk) the first time, then take the peers."""
        await self._open()
        DeskHost.set_peers(self, routes, telemetry)
        if self._resync_due and routes:     # resumed: the fresh shards learn the positions the desk holds
            self._resync_due = False
            await asyncio.gather(*self.resync())

    async def _open(self) -> None:
        if self.session is not None:
            return
        env = {**os.environ, **self.arming}   # keys: this process's environment or the secrets file
        o = self.options
        try:
            snap = read_run_snapshot(self.snapshots, self.run_id, self.profile) if self.resume else None
            session = await open_session(
                self.profile, env, self.run_id, policy=o.kill_policy, backoff=o.backoff, rate_limit=o.rate_limit,
                max_skew_ms=o.max_skew_ms, params=self.params, desk_options=o.desk_options(),
                kill_deadline_s=o.kill_deadline_s, known=snap.known_state() if snap is not None else None)
        except (LiveRefused, PreflightFailed, ResumeRefused) as exc:
            raise LiveStartRefused(f"live coordinator of {self.run_id}: {redact(exc)}") from None
        if sorted(session.desk.strategies) != sorted(self.symbols):
            await session.close()
            raise ValueError(f"LiveCoordinator: the feeds carry {sorted(self.symbols)} but profile "
                             f"{self.profile.name} trades {sorted(session.desk.strategies)}")
        self.session, self.desk = session, session.desk
        if snap is not None:
            await self._restore(snap)
        if self.snapshots is not None:     # written at once: a crash from here on leaves its state in Redis
            self.snap = Snapshotter(RedisSnapshotStore(self.snapshots), key(self.run_id, "coordinator", "main"),
                                    self._export)
            self.desk.before_send = lambda _order: self.snap.changed(urgent=True)
            self.snap.changed(urgent=True)
        if self._awaiting is None:
            self._housekeeping = asyncio.get_running_loop().create_task(self._keep_house())

    async def _restore(self, snap: RunSnapshot) -> None:
        """Resume: the run's desk from its snapshot; with no order left in doubt, check it against the
        venues at once (a difference refuses the start), else settle those orders once their books come."""
        summary = restore_desk(self.desk, snap)
        self.views, self.resumes, self.started_ms = snap.views(), summary["resumes"], snap.started_ms
        self._resync_due = True
        if self.reporter is not None:
            self.reporter.resume(self.desk)
        awaiting = mark_awaiting(self.desk)
        summary["awaiting_orders"] = awaiting
        if awaiting:
            self._awaiting = awaiting
            return
        report = await self.desk.reconcile()
        if not report.ok:
            await self.session.close()
            raise LiveStartRefused(f"resume {self.run_id}: the venues differ from snapshot {snap.key} version "
                                   f"{snap.version}: {describe(report)}; find out why before trading "
                                   f"(runbooks/crash-recovery.md)")
        summary["settled_orders"] = []

    async def _settled(self) -> bool:
        """A resumed run may trade once the orders the crash left in doubt are settled by client id, which
        books their fills and needs the coins' current books. True when there is nothing (left) to settle.
        A difference the settling reveals (drift, a foreign order) freezes trading with a P0 alert."""
        if self._awaiting is None:
            return True
        async with self._settle_lock:
            loop = asyncio.get_running_loop()
            if self._awaiting is None:
                return True
            if not books_needed(self.desk, self.profile) <= self._fresh_books or loop.time() < self._next_settle:
                return False
            report = await self.reconcile()
            if report["unresolved"]:     # a venue still cannot tell: try again a reconcile period later
                self._next_settle = loop.time() + self.options.reconcile_s
                return False
            self.desk.resumed["settled_orders"] = list(report["booked"])
            self._awaiting = None
            if report["drifts"] or report["foreign_orders"]:
                reason = f"resume of {self.run_id}: the venues differ from the desk after settling its orders"
                self.desk.portfolio.risk.frozen = reason
                self.desk.alert("P0", "resume_mismatch", f"{reason}: drifts {report['drifts']}, foreign orders "
                                f"{report['foreign_orders']}; trading frozen (runbooks/crash-recovery.md)")
                self._after_change()
            self._housekeeping = loop.create_task(self._keep_house())
            return True

    # ---- the coordinator interface ----
    async def on_books(self, books: list[Book], received_at: float = 0.0) -> None:
        self.desk.on_books(books)
        if self._awaiting is not None:
            self._fresh_books.update((b.venue, b.symbol) for b in books)
            await self._settled()
        self._publish()

    async def submit(self, intents: list[OrderIntent], received_at: float = 0.0, decided_at: float = 0.0) -> None:
        """Approve and trade one strategy batch; returns when every order it led to is final (or unresolved)."""
        self.calls["submits_handled"] += 1
        arrived = time.time()
        if not await self._settled():     # resumed, orders still in doubt: no new trading yet
            for intent in self._fresh(intents):
                self.desk.news.append(News(intent.symbol, "rejected", self.desk.now))
            self._publish()
            return
        async with self._desk_lock:
            orders_before = len(self.desk.trace.orders)
            for intent in self._fresh(intents):
                await self.desk.submit(resumed_intent(intent, self.resumes))
            self._hops(arrived, orders_before, received_at, decided_at)
        self._publish()
        self._after_change()

    async def kill(self, reason: str, policy: str | None = None) -> dict:
        """Kill switch: freeze, cancel every open order, then flatten or freeze (policy) what the desk holds.

        Not behind the desk lock: it must act while a submit waits on a failing venue.
        """
        report = await self.desk.kill(reason, policy)
        self._publish()
        self._after_change()
        return report.to_dict()

    async def reconcile(self) -> dict:
        """Settle unresolved orders by client id; compare open orders, balances and positions with the venues."""
        async with self._desk_lock:
            report = await self.desk.reconcile()
        if not report.ok:
            self.desk.alert("P1", "reconcile", f"reconcile: {len(report.unresolved)} unresolved, "
                            f"{len(report.foreign_orders)} foreign orders, {len(report.drifts)} drifts, "
                            f"{len(report.errors)} errors")
        self._publish()
        self._after_change()
        return {"ok": report.ok, **asdict(report)}

    async def counters(self) -> dict[str, int]:
        return DeskHost.counters(self)

    async def status(self) -> list[dict]:
        return DeskHost.status(self)

    async def snapshot_stats(self) -> dict | None:
        """Write counters of the Redis snapshot (graph.health asks every coordinator)."""
        return self.snap.stats() if self.snap is not None else None

    async def checkpoint(self) -> LiveDesk:
        """A copy of the desk (its venue clients stay here), for the KPI checkpoint."""
        return self.desk

    async def finish(self) -> LiveDesk | None:
        """End of run: stop housekeeping, wait for orders in flight, reconcile once more, close the venues."""
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        if self.desk is None:
            return None
        settled = await self._settled()
        async with self._desk_lock:
            await self.desk.finish()
            if not settled:     # booking them needs their coins' books, which never came
                self.desk.alert("P1", "resume_unsettled", f"orders of the crashed run still unsettled at the end: "
                                f"{sorted(self.desk.unresolved)}; they stay in the snapshot for the next resume")
            try:
                if settled:
                    await self.desk.reconcile()
            except Exception as exc:   # venues down at the end: say so, keep the run's results
                self.desk.alert("P1", "reconcile", f"final reconcile failed: {redact(exc)}")
        self._publish()
        self._after_change()
        await self.session.close()
        # Closing waits (bounded) for the last sends: off the event loop, which must not block.
        await asyncio.get_running_loop().run_in_executor(None, self._close_telemetry)
        return self.desk

    # ---- background and reporting ----
    async def _keep_house(self) -> None:
        """Reconcile every reconcile_s and book funding every funding_s; a failure is reported, never fatal."""
        loop = asyncio.get_running_loop()
        next_funding = loop.time() + self.options.funding_s
        while True:
            await asyncio.sleep(self.options.reconcile_s)
            try:
                await self.reconcile()
                if loop.time() >= next_funding:
                    async with self._desk_lock:
                        await self.desk.book_funding()
                    next_funding = loop.time() + self.options.funding_s
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                text = str(redact(exc))
                log.warning("live coordinator %s: housekeeping failed: %s", self.run_id, text)
                self.desk.alert("P1", "housekeeping", f"reconcile/funding failed: {text}")
                self._after_change()

    def _after_change(self) -> None:
        """After a submit, kill, reconcile or failed housekeeping: metrics and alerts, then the snapshot."""
        self._report_live()
        if self.snap is not None:
            self.snap.changed(urgent=True)

    def _export(self) -> dict:
        """What a crashed run leaves: what `main.py kill --run` trades back and `--resume` restores (live.resume)."""
        return export_run(self.desk, self.profile.name, self.started_ms, self.resumes, self.views)

    def _report_live(self) -> None:
        """The desk's new alerts to the dispatcher, and guards/round trips to metrics through DeskReporter."""
        if self.telemetry is None:
            return
        for alert in self.desk.live_alerts[self._alerts_sent:]:
            self.telemetry.alert(alert.severity, alert.kind, alert.message, symbol=alert.symbol)
        self._alerts_sent = len(self.desk.live_alerts)
        self.reporter.report(self.desk)
        for venue, client in self.desk.venues.items():     # counters since the last report
            now, before = client.stats.to_dict(), self._venue_counts.get(venue.value, {})
            for event in VENUE_EVENTS:
                if now[event] > before.get(event, 0):
                    self.telemetry.inc("venue_events", now[event] - before.get(event, 0), venue=venue.value,
                                       event=event)
            self._venue_counts[venue.value] = now
        for report in self.desk.kill_reports[self._kills_counted:]:
            self.telemetry.inc("kill_switch", policy=report.policy, result="ok" if report.ok else "left_open")
        self._kills_counted = len(self.desk.kill_reports)
