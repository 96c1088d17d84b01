"""TradeJournal: the coordinator's desk history to the durable store (storage.TradeStore), once per row.

`sync(desk)` after every change offers the store what is new in the desk's append-only lists: orders
and fills (desk.trace), round trips and guard decisions (desk.portfolio), and the engine's alerts
(stuck legs, desk.trace.alerts). The store buffers and journals through a database outage, so sync
never blocks or raises into trading. A restarted coordinator's desk comes back from its snapshot
with the whole history: the journal reads back the ids this run already has in the database at
construction and offers only the rest; what is still in flight sits in the run's local write
journal (one file per store and run) and is replayed by the store. Every table is keyed by
(run_id, id) and written insert-or-ignore, so nothing can land twice even when both overlap.
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from alerts.events import Alert
from domain.risk import Decision
from storage import JournalError, StorageError, TradeStore
from storage.trade_store import RUNS_DIR

log = logging.getLogger("actors.trade_journal")

LOCK_WAIT_S = 5.0      # a killed predecessor's process may still hold the run's journal file for a moment
ID_LEN = 64            # alert_id and decision_id columns


@dataclass(frozen=True)
class Kind:
    """One append-only list of the desk, the id that keys its rows, and how a row is recorded."""

    table: str
    items: Callable[[Any], list]
    ident: Callable[[Any], str]
    record: Callable[["TradeJournal", Any], None]


def decision_id(d: Decision) -> str:
    """One guard verdict per intent and time (the same intent replayed at its own time is the same fact)."""
    return _fit(f"{d.intent_id}@{d.ts_ms}")


def engine_alert_id(message: str) -> str:
    """The engine's alerts are plain texts naming the position: the text is the identity."""
    return "engine-" + hashlib.sha256(message.encode()).hexdigest()[:24]


def _fit(ident: str) -> str:
    return ident if len(ident) <= ID_LEN else ident[:ID_LEN - 17] + "~" + hashlib.sha256(ident.encode()).hexdigest()[:16]


KINDS = (
    Kind("orders", lambda desk: desk.trace.orders, lambda o: o.order_id,
         lambda j, o: j.store.record_order(j.run_id, o)),
    Kind("fills", lambda desk: desk.trace.fills, lambda f: f.fill_id,
         lambda j, f: j.store.record_fill(j.run_id, f)),
    Kind("round_trips", lambda desk: desk.portfolio.round_trips, lambda rt: rt.position_id,
         lambda j, rt: j.store.record_round_trip(j.run_id, rt)),
    Kind("guard_decisions", lambda desk: desk.portfolio.decisions, decision_id,
         lambda j, d: j.store.record_guard_decision(j.run_id, d.ts_ms, d.symbol, d.guard, d.tier, d.allowed,
                                                    d.detail, decision_id=decision_id(d))),
    Kind("alerts", lambda desk: desk.trace.alerts, engine_alert_id,
         lambda j, text: j.store.record_alert(j.run_id, {"alert_id": engine_alert_id(text), "ts_ms": j.now_ms,
                                                         "severity": "P1", "kind": "stuck_leg",
                                                         "source": "engine", "message": text})),
)


def journal_path(url: str, run_id: str, directory: str | Path | None = None) -> Path:
    """The run's local write journal: beside a SQLite file, else under runs/journals/ keyed by the URL."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):       # unparsable, or e.g. a port that is not a number
        shown = re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", str(url))
        raise StorageError(f"trade journal: {shown!r} is not a database URL "
                           "(expected sqlite:///FILE or postgresql://USER@HOST:PORT/DB)") from None
    safe_run = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)
    if directory is None and parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return Path(f"{parsed.database}.{safe_run}.journal")
    digest = hashlib.sha256(parsed.render_as_string(hide_password=True).encode()).hexdigest()[:12]
    return Path(directory or RUNS_DIR / "journals") / f"{digest}-{safe_run}.jsonl"


class TradeJournal:
    """Idempotent, non-blocking writer of one run's orders, fills, round trips, guard decisions and alerts."""

    def __init__(self, url: str, run_id: str, *, mode: str = "paper", profile: str = "",
                 config_digest: str = "", journal_dir: str | Path | None = None, max_backoff_s: float = 2.0) -> None:
        """Open the store (a database that is down is fine: writes wait in the journal) and read back
        what this run already stored. An unusable URL or schema raises StorageError naming it."""
        if not isinstance(run_id, str) or not run_id:
            raise ValueError(f"trade journal: run_id must be a non-empty string, got {run_id!r}")
        self.run_id = run_id
        self.path = journal_path(url, run_id, journal_dir)
        self.store = _open(url, self.path, max_backoff_s)
        self.now_ms = 0
        self._seen: dict[str, set[str]] = {k.table: set() for k in KINDS}
        self._cursor: dict[str, tuple[list, int]] = {}      # table -> (the desk's list, items offered)
        self.stored_at_start = {k.table: 0 for k in KINDS}
        self.written = {k.table: 0 for k in KINDS}
        self.skipped = {k.table: 0 for k in KINDS}
        self.refused = 0           # rows the store refused for their content (logged, not retried)
        self.sync_errors = 0       # unexpected failures inside sync, logged and swallowed
        self.checkpoints = 0
        self.alerts = 0
        self.readback = self._read_back()
        self.store.start_run(run_id, mode, profile, config_digest)

    def _read_back(self) -> str:
        """Take the ids this run already stored as seen. The database down: offer the whole history
        instead (the store ignores repeats), and do not wait a second connect timeout to learn it."""
        if not self.store.reachable_at_open:
            log.warning("trade journal %s: database down at open; offering the whole history", self.run_id)
            return "skipped: database unreachable at open"
        try:
            stored = self.store.stored_ids(self.run_id)
        except StorageError as error:
            log.warning("trade journal %s: cannot read back stored rows (%s); offering the whole history",
                        self.run_id, error)
            return f"failed: {error}"
        for table, ids in stored.items():
            self._seen[table] = ids
            self.stored_at_start[table] = len(ids)
        return "ok"

    # -- the coordinator's hook ----------------------------------------------------------------
    def sync(self, desk: Any) -> int:
        """Offer the store every row of `desk` not offered before; returns how many. Never raises."""
        try:
            self.now_ms = int(getattr(desk, "now", 0) or 0) or int(time.time() * 1000)
            return sum(self._sync_kind(kind, desk) for kind in KINDS)
        except Exception as error:  # noqa: BLE001 - a journal bug must not stop trading; counted and logged
            self.sync_errors += 1
            log.error("trade journal %s: sync failed (%d so far): %s: %s", self.run_id, self.sync_errors,
                      type(error).__name__, error)
            return 0

    def _sync_kind(self, kind: Kind, desk: Any) -> int:
        items = kind.items(desk)
        last, offered = self._cursor.get(kind.table, (None, 0))
        start = offered if last is items and offered <= len(items) else 0   # a replaced list: rescan it
        seen, count = self._seen[kind.table], 0
        for item in items[start:]:
            ident = kind.ident(item)
            if ident in seen:
                self.skipped[kind.table] += 1
                continue
            seen.add(ident)            # refused or not, it is never offered again
            try:
                kind.record(self, item)
            except (TypeError, ValueError) as error:
                self.refused += 1
                log.error("trade journal %s: %s %s refused: %s", self.run_id, kind.table, ident, error)
                continue
            self.written[kind.table] += 1
            count += 1
        self._cursor[kind.table] = (items, len(items))
        return count

    # -- KPI checkpoints and alerts ------------------------------------------------------------
    def checkpoint(self, kpi: dict[str, Any], ts_ms: int | None = None) -> None:
        """Record a KPI checkpoint (one per run and ts_ms). A KPI that is not JSON-safe is a ValueError."""
        self.store.record_kpi_checkpoint(self.run_id, int(time.time() * 1000) if ts_ms is None else ts_ms, kpi)
        self.checkpoints += 1

    def alert(self, alert: Alert | dict[str, Any]) -> str:
        """Record an alert (an alerts.events.Alert or its dict); its id is derived from its content, so
        the same alert offered again after a restart stays one row. Returns the id."""
        payload = alert.to_dict() if isinstance(alert, Alert) else Alert.from_dict(alert, "trade journal alert").to_dict()
        key = "|".join(str(payload[k]) for k in ("severity", "kind", "source", "symbol", "message", "ts_ms"))
        alert_id = "alert-" + hashlib.sha256(key.encode()).hexdigest()[:24]
        self.store.record_alert(self.run_id, {**payload, "alert_id": alert_id})
        self.alerts += 1
        return alert_id

    # -- end of run and counters ---------------------------------------------------------------
    def finish(self, status: str, exit_code: int, timeout_s: float = 5.0) -> bool:
        """Record how the run ended and wait up to `timeout_s` for the backlog; True when all is committed."""
        self.store.end_run(self.run_id, status, exit_code)
        return self.store.flush(timeout_s)

    def flush(self, timeout_s: float = 10.0) -> bool:
        return self.store.flush(timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        """Drain what can be drained, stop the writer; an empty journal file is removed."""
        self.store.close(timeout_s)
        try:
            if self.path.exists() and self.path.stat().st_size == 0:
                self.path.unlink()
        except OSError as error:
            log.warning("trade journal %s: could not remove the empty journal %s: %s", self.run_id, self.path, error)

    def stats(self) -> dict[str, Any]:
        """For the KPI file: rows offered per table, rows already stored at start, and the store's
        outage counters (outages, failed attempts, writes held through an outage, backlog)."""
        return {"run_id": self.run_id, "journal": str(self.path), "readback": self.readback,
                "stored_at_start": dict(self.stored_at_start), "written": dict(self.written),
                "skipped_already_stored": dict(self.skipped), "refused": self.refused,
                "sync_errors": self.sync_errors, "checkpoints": self.checkpoints, "alerts": self.alerts,
                **self.store.stats()}


def _open(url: str, path: Path, max_backoff_s: float) -> TradeStore:
    """The store on the run's journal; waits briefly while a killed predecessor still holds the file."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            return TradeStore(url, journal_path=path, max_backoff_s=max_backoff_s)
        except JournalError as error:
            if "in use" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
