"""TradeStore: durable runs, orders, fills, round trips, KPIs, alerts and guard decisions.

SQLite file by default, PostgreSQL by URL. Writes go through a journalled background writer, so a
database outage never blocks or raises in trading code; readers query the database directly and
see what has been committed (call `flush` first to read your own writes).
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from config.paths import REPO
from domain.orders import Fill, Order, RoundTrip
from storage import records
from storage.errors import StorageError
from storage.journal import Journal
from storage.schema import ensure_schema
from storage.tables import (RECORD_IDS, TABLES, alerts, fills, guard_decisions, kpi_checkpoints, orders,
                            round_trips, runs)
from storage.writer import BufferedWriter, is_transient

log = logging.getLogger(__name__)

DEFAULT_URL = f"sqlite:///{REPO / 'runs' / 'arbitrage.db'}"
RUNS_DIR = REPO / "runs"


class TradeStore:
    """Record and read a run's trading history; survives database outages without losing a write."""

    def __init__(self, url: str = DEFAULT_URL, journal_path: str | Path | None = None,
                 journal: bool = True, max_backoff_s: float = 5.0, connect_timeout_s: int = 3) -> None:
        """Open (creating or migrating) the database; the journal defaults to beside it or runs/."""
        self.url = make_url(url)
        self.where = self.url.render_as_string(hide_password=True)
        self.engine = _engine(self.url, connect_timeout_s)
        if journal and (journal_path or not _in_memory(self.url)):
            self._journal: Journal | None = Journal(journal_path or _default_journal(self.url))
        else:
            self._journal = None  # an in-memory database buffers in memory only
        self.journal_path = self._journal.path if self._journal else None
        self._writer = BufferedWriter(self.engine, self._journal, self._prepare, max_backoff_s)
        try:
            self._prepare()
            prepared = True
        except SQLAlchemyError as error:
            if not is_transient(error):
                self._close_quietly()
                raise StorageError(f"{self.where}: cannot open the trade store: {error}") from error
            log.warning("%s unreachable at open; writes are buffered until it is back: %s",
                        self.where, str(error).splitlines()[0])
            prepared = False
        except StorageError:
            self._close_quietly()
            raise
        self.reachable_at_open = prepared    # False: the database was down when this store opened
        self._writer.start(prepared)

    def _prepare(self) -> None:
        ensure_schema(self.engine)

    # -- writes: validated here, applied in order by the background writer ------------------

    def start_run(self, run_id: str, mode: str, profile: str, config_digest: str,
                  started_ms: int | None = None) -> None:
        """Record that a run began (status 'running')."""
        if mode not in records.RUN_MODES:
            raise ValueError(f"run {run_id}: mode {mode!r} not one of {records.RUN_MODES}")
        self._submit("runs", {"run_id": _id("run_id", run_id), "mode": mode, "profile": profile,
                              "config_digest": config_digest, "started_ms": started_ms or _now_ms(),
                              "ended_ms": None, "status": "running", "exit_code": None})

    def end_run(self, run_id: str, status: str, exit_code: int, ended_ms: int | None = None) -> None:
        """Record how a run ended; repeating it with the same values changes nothing."""
        self._writer.submit({"op": "end_run", "row": {"run_id": run_id, "status": status,
                                                      "exit_code": int(exit_code),
                                                      "ended_ms": ended_ms or _now_ms()}})

    def record_order(self, run_id: str, order: Order) -> None:
        self._record(run_id, order, Order, "orders")

    def record_fill(self, run_id: str, fill: Fill) -> None:
        self._record(run_id, fill, Fill, "fills")

    def record_round_trip(self, run_id: str, trip: RoundTrip) -> None:
        self._record(run_id, trip, RoundTrip, "round_trips")

    def record_kpi_checkpoint(self, run_id: str, ts_ms: int, kpi: dict[str, Any]) -> None:
        """Record the KPI dict at `ts_ms`; one checkpoint per (run, ts_ms)."""
        self._submit("kpi_checkpoints", {"run_id": _id("run_id", run_id), "ts_ms": int(ts_ms),
                                         "kpi": _json_dict(kpi, f"kpi checkpoint {run_id}@{ts_ms}")})

    def record_alert(self, run_id: str, alert: dict[str, Any]) -> str:
        """Record an alert dict (optional keys alert_id, ts_ms, severity, kind, message); returns its id."""
        payload = _json_dict(alert, f"alert for run {run_id}")
        alert_id = str(payload.get("alert_id") or uuid.uuid4().hex)
        self._submit("alerts", {"alert_id": alert_id, "run_id": _id("run_id", run_id),
                                "ts_ms": int(payload.get("ts_ms") or _now_ms()),
                                "severity": str(payload.get("severity", "info")),
                                "kind": str(payload.get("kind", "alert")),
                                "message": str(payload.get("message", "")), "payload": payload})
        return alert_id

    def record_guard_decision(self, run_id: str, ts_ms: int, symbol: str, guard: str, tier: str,
                              allowed: bool, detail: str = "", decision_id: str | None = None) -> str:
        """Record one guard verdict (tier: symbol, route, venue or global); returns its id."""
        decision_id = decision_id or uuid.uuid4().hex
        self._submit("guard_decisions", {"decision_id": decision_id, "run_id": _id("run_id", run_id),
                                         "ts_ms": int(ts_ms), "symbol": symbol, "guard": guard,
                                         "tier": tier, "allowed": bool(allowed), "detail": detail})
        return decision_id

    def _record(self, run_id: str, record: Any, cls: type, table: str) -> None:
        if not isinstance(record, cls):
            raise TypeError(f"record to {table}: expected {cls.__name__}, got {type(record).__name__}")
        self._submit(table, records.record_row(_id("run_id", run_id), record))

    def _submit(self, table: str, row: dict[str, Any]) -> None:
        self._writer.submit({"op": "insert", "table": table, "row": row})

    # -- outage handling ----------------------------------------------------------------------

    def backlog(self) -> int:
        """Writes accepted but not yet committed."""
        return self._writer.backlog()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait for the backlog to drain; True when it has, False when `timeout` passed first."""
        return self._writer.flush(timeout)

    def stats(self) -> dict[str, Any]:
        """Write counters for the KPI file: committed, rejected, outages, writes held through them."""
        return {"store": self.where, **self._writer.stats()}

    @property
    def last_error(self) -> str | None:
        """The database error of the current outage, or None while writes go through."""
        return self._writer.last_error

    @property
    def fatal(self) -> BaseException | None:
        """An error that stopped the writer (e.g. the schema became newer); writes stay journalled."""
        return self._writer.fatal

    @property
    def rejected(self) -> int:
        """Writes the database refused for their content, set aside in the journal's .rejected file."""
        return self._writer.rejected

    def close(self, timeout: float = 5.0) -> None:
        """Drain what can be drained within `timeout`, then stop; the rest stays in the journal."""
        if not self._writer.flush(timeout):
            log.warning("%s: closing with %d writes uncommitted; they stay in journal %s",
                        self.where, self.backlog(), self.journal_path)
        self._writer.stop(timeout)
        self._close_quietly()

    def _close_quietly(self) -> None:
        if self._journal is not None:
            self._journal.close()
        self.engine.dispose()

    def __enter__(self) -> "TradeStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- readers: committed rows only ---------------------------------------------------------

    def run(self, run_id: str) -> records.RunRecord | None:
        rows = self._select(runs, select(runs).where(runs.c.run_id == run_id))
        return records.run_from_row(rows[0]) if rows else None

    def orders(self, run_id: str) -> list[Order]:
        q = select(orders).where(orders.c.run_id == run_id).order_by(orders.c.ts_ms, orders.c.order_id)
        return [records.order_from_row(r) for r in self._select(orders, q)]

    def fills(self, run_id: str) -> list[Fill]:
        q = select(fills).where(fills.c.run_id == run_id).order_by(fills.c.ts_ms, fills.c.fill_id)
        return [records.fill_from_row(r) for r in self._select(fills, q)]

    def round_trips(self, run_id: str) -> list[RoundTrip]:
        q = (select(round_trips).where(round_trips.c.run_id == run_id)
             .order_by(round_trips.c.exit_ts_ms, round_trips.c.position_id))
        return [records.round_trip_from_row(r) for r in self._select(round_trips, q)]

    def latest_kpi(self, run_id: str) -> dict[str, Any] | None:
        q = (select(kpi_checkpoints.c.kpi).where(kpi_checkpoints.c.run_id == run_id)
             .order_by(kpi_checkpoints.c.ts_ms.desc()).limit(1))
        rows = self._select(kpi_checkpoints, q)
        return rows[0]["kpi"] if rows else None

    def alerts(self, run_id: str) -> list[dict[str, Any]]:
        q = (select(alerts.c.payload, alerts.c.alert_id).where(alerts.c.run_id == run_id)
             .order_by(alerts.c.ts_ms, alerts.c.alert_id))
        return [{**r["payload"], "alert_id": r["alert_id"]} for r in self._select(alerts, q)]

    def guard_decisions(self, run_id: str) -> list[records.GuardDecision]:
        q = (select(guard_decisions).where(guard_decisions.c.run_id == run_id)
             .order_by(guard_decisions.c.ts_ms, guard_decisions.c.decision_id))
        return [records.guard_decision_from_row(r) for r in self._select(guard_decisions, q)]

    def stored_ids(self, run_id: str) -> dict[str, set[str]]:
        """The ids already committed for `run_id`, per record table, read in one connection
        (a writer resuming a run skips what is there instead of offering it again)."""
        try:
            with self.engine.connect() as conn:
                return {name: set(conn.execute(select(TABLES[name].c[column])
                                               .where(TABLES[name].c.run_id == run_id)).scalars())
                        for name, column in RECORD_IDS.items()}
        except SQLAlchemyError as error:
            raise StorageError(f"{self.where}: reading the ids stored for run {run_id} failed: "
                               f"{str(error).splitlines()[0]}") from error

    def _select(self, table: Any, query: Any) -> list[dict[str, Any]]:
        try:
            with self.engine.connect() as conn:
                return [dict(r._mapping) for r in conn.execute(query)]
        except SQLAlchemyError as error:
            raise StorageError(f"{self.where}: reading {table.name} failed: "
                               f"{str(error).splitlines()[0]}") from error


def _engine(url: Any, connect_timeout_s: int) -> Engine:
    if url.get_backend_name() == "sqlite":
        if _in_memory(url):
            return create_engine(url, poolclass=StaticPool,
                                 connect_args={"check_same_thread": False})
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        return create_engine(url, connect_args={"check_same_thread": False, "timeout": 5})
    if url.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True, pool_size=2, connect_args={
            "connect_timeout": connect_timeout_s, "keepalives": 1, "keepalives_idle": 5,
            "keepalives_interval": 2, "keepalives_count": 2})
    raise StorageError(f"{url.render_as_string(hide_password=True)}: only sqlite and postgresql "
                       "URLs are supported")


def _in_memory(url: Any) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _default_journal(url: Any) -> Path:
    """Beside a SQLite file; under runs/ keyed by the URL (password hidden) otherwise."""
    if url.get_backend_name() == "sqlite":
        return Path(url.database + ".journal")
    digest = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:12]
    return RUNS_DIR / f"journal-{digest}.jsonl"


def _id(name: str, value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _json_dict(value: dict[str, Any], what: str) -> dict[str, Any]:
    """A JSON-safe copy of `value` (finite numbers only), so the journal and database keep it as is."""
    if not isinstance(value, dict):
        raise TypeError(f"{what}: expected a dict, got {type(value).__name__}")
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what}: not JSON-safe ({error})") from error


def _now_ms() -> int:
    return int(time.time() * 1000)
