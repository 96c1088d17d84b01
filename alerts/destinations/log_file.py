"""Always-on destination: one JSON line per alert appended to a file, secrets masked."""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Iterable

from alerts.destinations.base import DeliveryError
from alerts.events import Alert
from alerts.masking import Masker


class LogFileDestination:
    """Appends alerts as JSON lines. Given every other channel's secrets so none is written."""

    name = "log"
    secrets: tuple[str, ...] = ()

    def __init__(self, path: Path | str, secrets: Iterable[str] = ()) -> None:
        self.path = Path(path)
        self._masker = Masker(secrets)
        self._lock = threading.Lock()
        self._file = None

    def send(self, alert: Alert) -> None:
        line = self._masker(json.dumps(alert.to_dict(), ensure_ascii=False, sort_keys=True))
        with self._lock:
            try:
                if self._file is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = self.path.open("a", encoding="utf-8")
                self._file.write(line + "\n")
                self._file.flush()
            except OSError as exc:
                self._drop_handle()
                raise DeliveryError(f"log: cannot append to {self.path}: {exc.strerror}",
                                    retryable=False) from None

    def close(self) -> None:
        with self._lock:
            self._drop_handle()

    def _drop_handle(self) -> None:
        """Forget the handle so the next send reopens the file (it may have been rotated)."""
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
