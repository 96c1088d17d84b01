"""A background writer that applies queued writes in order, retrying with backoff through outages.

Callers `submit` and return at once; a thread commits batches in submission order. A lost
connection keeps the batch and retries with exponential backoff; a write the database rejects
for its content (not its availability) is set aside in a `.rejected` file so it cannot block the
queue forever. Every write is idempotent (insert-or-ignore on the primary key, or an update to
fixed values), so a batch retried after an ambiguous failure never duplicates a row.
"""
from __future__ import annotations

import collections
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import Connection, Engine, exc, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.errors import StorageError
from storage.journal import Journal
from storage.tables import TABLES, runs

log = logging.getLogger(__name__)

BATCH = 200
MIN_BACKOFF_S = 0.05
URGENT_BACKOFF_S = 0.1  # cap while someone waits in flush()

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def is_transient(error: BaseException) -> bool:
    """True when the failure is about reaching the database, so the same write may succeed later."""
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, (exc.OperationalError, exc.InterfaceError, exc.DisconnectionError,
                              exc.TimeoutError, OSError))


def apply_write(conn: Connection, write: dict[str, Any]) -> None:
    """Apply one journalled write: an idempotent insert or the end-of-run update."""
    op = write["op"]
    if op == "insert":
        table = TABLES[write["table"]]
        insert = _INSERTS[conn.dialect.name]
        conn.execute(insert(table).on_conflict_do_nothing(), [write["row"]])
    elif op == "end_run":
        row = write["row"]
        conn.execute(update(runs).where(runs.c.run_id == row["run_id"])
                     .values(ended_ms=row["ended_ms"], status=row["status"], exit_code=row["exit_code"]))
    else:
        raise StorageError(f"unknown write op {op!r}")


class BufferedWriter:
    """Queue + journal + thread. `prepare` runs (and is retried) before the first batch is applied."""

    def __init__(self, engine: Engine, journal: Journal | None, prepare: Callable[[], None],
                 max_backoff_s: float = 5.0) -> None:
        self._engine = engine
        self._journal = journal
        self._prepare = prepare
        self._prepared = False
        self._max_backoff = max_backoff_s
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._pending: collections.deque[tuple[int, dict[str, Any]]] = collections.deque()
        self._seq = 0
        self._stop = False
        self._urgent = 0
        self.fatal: BaseException | None = None
        self.last_error: str | None = None
        self.rejected = 0
        # Outage accounting for the KPI file: how often the database went away, how many attempts
        # failed, and how many writes waited through an outage before they were committed.
        self.committed = 0
        self.outages = 0
        self.failed_attempts = 0
        self.held_through_outage = 0
        self.peak_backlog = 0
        self.replayed = len(journal.pending) if journal is not None else 0   # left by the last process
        if journal is not None:
            self._pending.extend(journal.pending)
            self._seq = journal.last_seq
            if journal.pending:
                log.warning("journal %s: replaying %d writes not committed before the last exit",
                            journal.path, len(journal.pending))
        self._thread = threading.Thread(target=self._run, daemon=True, name="trade-store-writer")

    def start(self, prepared: bool) -> None:
        self._prepared = prepared
        self._thread.start()

    def submit(self, write: dict[str, Any]) -> None:
        """Queue a write; never raises for the database, and for the journal only logs."""
        with self._lock:
            seq = self._seq + 1
            if self._journal is not None:
                try:
                    seq = self._journal.append(write)
                except OSError as error:  # keep trading; the write stays queued in memory
                    log.error("journal %s: append failed (%s); write kept in memory only",
                              self._journal.path, error)
            self._seq = seq
            self._pending.append((seq, write))
            self.peak_backlog = max(self.peak_backlog, len(self._pending))
        self._wake.set()

    def backlog(self) -> int:
        with self._lock:
            return len(self._pending)

    def stats(self) -> dict[str, Any]:
        """Counters of what was committed, set aside and held through outages (see __init__)."""
        return {"backlog": self.backlog(), "committed": self.committed, "rejected": self.rejected,
                "outages": self.outages, "failed_attempts": self.failed_attempts,
                "held_through_outage": self.held_through_outage, "peak_backlog": self.peak_backlog,
                "replayed_from_journal": self.replayed, "last_error": self.last_error, "fatal": None if self.fatal is None else _first_line(self.fatal)}

    def flush(self, timeout: float) -> bool:
        """Wait until every queued write is committed; False if `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._urgent += 1
        self._wake.set()
        try:
            with self._idle:
                while self._pending and self.fatal is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._idle.wait(min(left, 0.05))
                return not self._pending
        finally:
            with self._lock:
                self._urgent -= 1

    def stop(self, timeout: float) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        backoff = MIN_BACKOFF_S
        while not self._stop:
            waiting = self.backlog() if self.last_error is not None else 0
            try:
                progressed = self._step()
            except Exception as error:  # noqa: BLE001 - classified below; the thread must survive
                if not is_transient(error):
                    self.fatal = error
                    log.error("trade store stopped writing: %s (writes stay journalled)", error)
                    with self._idle:
                        self._idle.notify_all()
                    return
                if self.last_error is None:
                    self.outages += 1
                    log.warning("database unavailable, buffering writes: %s", _first_line(error))
                self.failed_attempts += 1
                self.last_error = _first_line(error)
                with self._lock:
                    cap = URGENT_BACKOFF_S if self._urgent else self._max_backoff
                self._wake.wait(min(backoff, cap))
                self._wake.clear()
                backoff = min(backoff * 2, self._max_backoff)
                continue
            if self.last_error is not None:
                self.held_through_outage += waiting
                log.info("database reachable again; %d writes held through the outage, %d still queued",
                         waiting, self.backlog())
                self.last_error = None
            backoff = MIN_BACKOFF_S
            if not progressed:
                self._wake.wait(1.0)
                self._wake.clear()

    def _step(self) -> bool:
        """Prepare if needed, then commit one batch; False when there was nothing to do."""
        if not self._prepared:
            self._prepare()
            self._prepared = True
        with self._lock:
            batch = [self._pending[i] for i in range(min(BATCH, len(self._pending)))]
        if not batch:
            return False
        try:
            with self._engine.begin() as conn:
                for _, write in batch:
                    apply_write(conn, write)
        except exc.SQLAlchemyError as error:
            if is_transient(error):
                raise
            self._apply_one_by_one(batch)  # find the write the database refuses
            return True
        self.committed += len(batch)
        self._done(len(batch))
        return True

    def _apply_one_by_one(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        for seq, write in batch:
            try:
                with self._engine.begin() as conn:
                    apply_write(conn, write)
                self.committed += 1
            except (exc.SQLAlchemyError, StorageError, KeyError) as error:
                if is_transient(error):
                    raise
                self._reject(seq, write, error)
            self._done(1)

    def _reject(self, seq: int, write: dict[str, Any], error: BaseException) -> None:
        self.rejected += 1
        where = write.get("table") or write.get("op")
        log.error("write #%d to %s rejected by the database and set aside: %s", seq, where,
                  _first_line(error))
        if self._journal is not None:
            path = Path(str(self._journal.path) + ".rejected")
            with open(path, "a") as out:
                out.write(json.dumps({"seq": seq, "error": _first_line(error), **write}) + "\n")

    def _done(self, count: int) -> None:
        with self._idle:
            last = 0
            for _ in range(count):
                last, _ = self._pending.popleft()
            if self._journal is not None:
                try:
                    self._journal.clear() if not self._pending else self._journal.ack(last)
                except OSError as error:
                    log.error("journal %s: ack failed (%s); replay will repeat committed writes",
                              self._journal.path, error)
            self._idle.notify_all()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
