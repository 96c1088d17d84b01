"""Conversions between domain records and table rows (enums as their string values), and run rows."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

from domain.orders import Direction, Fill, Order, Purpose, RoundTrip, Side

RUN_MODES = ("backtest", "paper", "live")


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as stored: what was run, with which config, and how it ended."""

    run_id: str
    mode: str
    profile: str
    config_digest: str
    started_ms: int
    ended_ms: int | None
    status: str
    exit_code: int | None

    @property
    def duration_ms(self) -> int | None:
        return None if self.ended_ms is None else self.ended_ms - self.started_ms


def record_row(run_id: str, record: Order | Fill | RoundTrip) -> dict[str, Any]:
    """A row for `record` under `run_id`; refuses non-finite numbers, which the database would keep."""
    row: dict[str, Any] = {"run_id": run_id}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if isinstance(value, (Side, Purpose, Direction)):
            value = value.value
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{type(record).__name__} {_record_id(record)}: field {f.name} is {value}")
        row[f.name] = value
    return row


def order_from_row(row: Mapping[str, Any]) -> Order:
    return Order(**_fields(Order, row, side=Side, purpose=Purpose))


def fill_from_row(row: Mapping[str, Any]) -> Fill:
    return Fill(**_fields(Fill, row, side=Side))


def round_trip_from_row(row: Mapping[str, Any]) -> RoundTrip:
    return RoundTrip(**_fields(RoundTrip, row, direction=Direction))


def run_from_row(row: Mapping[str, Any]) -> RunRecord:
    return RunRecord(**{f.name: row[f.name] for f in dataclasses.fields(RunRecord)})


def _fields(cls: type, row: Mapping[str, Any], **enums: type) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cls):
        value = row[f.name]
        out[f.name] = enums[f.name](value) if f.name in enums else value
    return out


def _record_id(record: Order | Fill | RoundTrip) -> str:
    if isinstance(record, Fill):
        return record.fill_id
    if isinstance(record, Order):
        return record.order_id
    return record.position_id


@dataclass(frozen=True, slots=True)
class GuardDecision:
    """One risk-guard verdict: which guard at which tier allowed or blocked what, and why."""

    decision_id: str
    run_id: str
    ts_ms: int
    symbol: str
    guard: str
    tier: str
    allowed: bool
    detail: str


def guard_decision_from_row(row: Mapping[str, Any]) -> GuardDecision:
    return GuardDecision(**{f.name: row[f.name] for f in dataclasses.fields(GuardDecision)})
