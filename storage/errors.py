"""The storage error tree: one base, and the cases a caller may want to tell apart."""
from __future__ import annotations


class StorageError(Exception):
    """Anything the trade store cannot do; the message names the database, table or file."""


class SchemaTooNew(StorageError):
    """The database was written by newer code than this; refusing rather than corrupting it."""


class JournalError(StorageError):
    """The local write journal is unreadable or already in use."""
