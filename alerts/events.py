"""The alert record every actor emits: severity, kind, source, symbol, message, time, fields."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Mapping, Union

Scalar = Union[str, int, float, bool, None]
_SCALARS = (str, int, float, bool, type(None))


class Severity(IntEnum):
    """P0 is the most urgent (page now); P3 is informational (log only by default)."""

    P0 = 0
    P1 = 1
    P2 = 2
    P3 = 3

    @classmethod
    def parse(cls, value: Any, where: str = "severity") -> "Severity":
        """Accept a Severity, "P0".."P3" or 0..3; anything else is a clear error naming `where`."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3:
            return cls(value)
        raise ValueError(f"{where}: {value!r} is not a severity (expected P0, P1, P2 or P3)")


@dataclass(frozen=True, slots=True)
class Alert:
    """One event worth telling a person about. `fields` holds extra str -> scalar details."""

    severity: Severity
    kind: str                 # e.g. guard_breach, leg_risk, feed_gap, restart, kill_switch, fill
    source: str               # the actor (or component) that raised it
    symbol: str | None
    message: str
    ts_ms: int
    fields: Mapping[str, Scalar] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity.parse(self.severity, "alert.severity"))
        for name in ("kind", "source", "message"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"alert.{name}: expected a non-empty string, got {value!r}")
        if self.symbol is not None and (not isinstance(self.symbol, str) or not self.symbol):
            raise ValueError(f"alert.symbol: expected a non-empty string or None, got {self.symbol!r}")
        if not isinstance(self.ts_ms, int) or isinstance(self.ts_ms, bool) or self.ts_ms < 0:
            raise ValueError(f"alert.ts_ms: expected a non-negative int (ms), got {self.ts_ms!r}")
        if not isinstance(self.fields, Mapping):
            raise ValueError(f"alert.fields: expected a mapping, got {type(self.fields).__name__}")
        for key, value in self.fields.items():
            if not isinstance(key, str):
                raise ValueError(f"alert.fields: key {key!r} is not a string")
            if not isinstance(value, _SCALARS):
                raise ValueError(
                    f"alert.fields[{key!r}]: {type(value).__name__} is not a scalar "
                    "(str, int, float, bool or None)")
        # A private copy, so the caller mutating its dict cannot change a sent alert.
        object.__setattr__(self, "fields", dict(self.fields))

    @property
    def throttle_key(self) -> tuple[str, str | None]:
        """Alerts sharing this key are throttled and summarised together."""
        return (self.kind, self.symbol)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (severity as "P0".."P3"), for log lines and snapshots."""
        return {"severity": self.severity.name, "kind": self.kind, "source": self.source,
                "symbol": self.symbol, "message": self.message, "ts_ms": self.ts_ms,
                "fields": dict(self.fields)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "alert") -> "Alert":
        """Rebuild an alert from `to_dict` output; a missing key is named with `where`."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {type(raw).__name__}")
        missing = [k for k in ("severity", "kind", "source", "message", "ts_ms") if k not in raw]
        if missing:
            raise ValueError(f"{where}: missing key(s) {', '.join(missing)}")
        try:
            return cls(severity=Severity.parse(raw["severity"], f"{where}.severity"),
                       kind=raw["kind"], source=raw["source"], symbol=raw.get("symbol"),
                       message=raw["message"], ts_ms=raw["ts_ms"], fields=raw.get("fields") or {})
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
