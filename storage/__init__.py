"""Durable storage of runs and trading records (SQLAlchemy: SQLite by default, PostgreSQL by URL)."""
from storage.errors import JournalError, SchemaTooNew, StorageError
from storage.records import GuardDecision, RunRecord
from storage.schema import SCHEMA_VERSION
from storage.trade_store import DEFAULT_URL, TradeStore

__all__ = ["DEFAULT_URL", "GuardDecision", "JournalError", "RunRecord", "SCHEMA_VERSION",
           "SchemaTooNew", "StorageError", "TradeStore"]
