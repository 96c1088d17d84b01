"""An append-only local file of pending writes, so a process crash during an outage loses none.

One JSON object per line: {"seq": n, ...write...} when a write is accepted, {"ack": n} once every
write up to n is committed. On open, writes after the last ack are pending again (replaying a
committed one is harmless: every write is idempotent). The file is emptied whenever nothing is
pending. It is flushed to the OS on every append: safe against a process crash, not a power cut.
"""
from __future__ import annotations

import fcntl
import json
import logging
from pathlib import Path
from typing import Any

from storage.errors import JournalError

log = logging.getLogger(__name__)


class Journal:
    """The write journal at `path`, locked against a second writer for as long as it is open."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+b")
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise JournalError(f"journal {self.path} is in use by another open TradeStore") from None
        self.pending, self.last_seq = self._read()

    def _read(self) -> tuple[list[tuple[int, dict[str, Any]]], int]:
        """Pending (seq, write) pairs after the last ack, and the highest seq seen."""
        self._file.seek(0)
        raw = self._file.read()
        lines = raw.split(b"\n")
        if lines and lines[-1]:  # no final newline: the process died mid-append
            log.warning("journal %s: dropping a truncated last line (%d bytes) left by a crash",
                        self.path, len(lines[-1]))
            self._file.truncate(len(raw) - len(lines[-1]))
        entries: dict[int, dict[str, Any]] = {}
        acked, last_seq = 0, 0
        for number, line in enumerate(lines[:-1], start=1):
            try:
                entry = json.loads(line)
                if "ack" in entry:
                    acked = max(acked, int(entry["ack"]))
                    continue
                seq = int(entry.pop("seq"))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise JournalError(f"journal {self.path} line {number}: unreadable entry ({exc}); "
                                   "move the file aside to start without it") from exc
            entries[seq] = entry
            last_seq = max(last_seq, seq)
        pending = sorted((seq, w) for seq, w in entries.items() if seq > acked)
        return pending, max(last_seq, acked)

    def append(self, write: dict[str, Any]) -> int:
        """Record one accepted write and return its sequence number."""
        self.last_seq += 1
        self._write({"seq": self.last_seq, **write})
        return self.last_seq

    def ack(self, seq: int) -> None:
        """Mark every write up to `seq` committed."""
        self._write({"ack": seq})

    def clear(self) -> None:
        """Empty the file: call only when nothing is pending."""
        self._file.truncate(0)
        self._file.flush()

    def _write(self, entry: dict[str, Any]) -> None:
        self._file.write(json.dumps(entry, separators=(",", ":")).encode() + b"\n")
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
