"""SQLAlchemy Core tables for runs, orders, fills, round trips, KPIs, alerts and guard decisions."""
from __future__ import annotations

from sqlalchemy import (JSON, BigInteger, Boolean, Column, Double, Index, Integer, MetaData,
                        PrimaryKeyConstraint, String, Table, Text)

metadata = MetaData()

# Record ids are unique within a run, not across runs (the engine numbers positions per run, so two
# runs of one profile reuse "BTC-p1-entry-upbit-1"): every record table is keyed by (run_id, id).
# Schema version 1 keyed them by the id alone, which silently dropped a later run's rows
# (storage/migrations.py moves a version 1 database over).

# One row per process run; ended_ms/status/exit_code are filled in by end_run.
runs = Table(
    "runs", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("mode", String(16), nullable=False),
    Column("profile", String(128), nullable=False),
    Column("config_digest", String(128), nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("ended_ms", BigInteger),
    Column("status", String(32), nullable=False),
    Column("exit_code", Integer),
)

# Columns mirror domain.orders.Order; enums are stored as their string values.
orders = Table(
    "orders", metadata,
    Column("order_id", String(128), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("position_id", String(128), nullable=False),
    Column("venue", String(32), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(8), nullable=False),
    Column("qty", Double, nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("due_ms", BigInteger, nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("ref_price", Double, nullable=False),
    Column("limit_price", Double),  # NULL = market order
    PrimaryKeyConstraint("run_id", "order_id", name="orders_pkey"),
    Index("ix_orders_run", "run_id", "ts_ms"),
)

# Columns mirror domain.orders.Fill.
fills = Table(
    "fills", metadata,
    Column("fill_id", String(128), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("order_id", String(128), nullable=False),
    Column("position_id", String(128), nullable=False),
    Column("venue", String(32), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(8), nullable=False),
    Column("requested_qty", Double, nullable=False),
    Column("qty", Double, nullable=False),
    Column("price", Double, nullable=False),
    Column("fee", Double, nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("slippage_bps", Double, nullable=False),
    PrimaryKeyConstraint("run_id", "fill_id", name="fills_pkey"),
    Index("ix_fills_run", "run_id", "ts_ms"),
)

# Columns mirror domain.orders.RoundTrip.
round_trips = Table(
    "round_trips", metadata,
    Column("position_id", String(128), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("direction", String(16), nullable=False),
    Column("entry_ts_ms", BigInteger, nullable=False),
    Column("exit_ts_ms", BigInteger, nullable=False),
    Column("qty", Double, nullable=False),
    Column("entry_premium", Double, nullable=False),
    Column("exit_premium", Double, nullable=False),
    Column("exit_reason", String(64), nullable=False),
    Column("pnl_krw", Double, nullable=False),
    Column("pnl_usd", Double, nullable=False),
    Column("fees_krw", Double, nullable=False),
    Column("slippage_krw", Double, nullable=False),
    Column("funding_krw", Double, nullable=False),
    Column("fx_drift_krw", Double, nullable=False),
    Column("leg_risk_krw", Double, nullable=False),
    Column("krw_delta", String(64), nullable=False),   # exact Decimal as text: never through a float
    Column("usdt_delta", String(64), nullable=False),
    PrimaryKeyConstraint("run_id", "position_id", name="round_trips_pkey"),
    Index("ix_round_trips_run", "run_id", "exit_ts_ms"),
)

kpi_checkpoints = Table(
    "kpi_checkpoints", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("ts_ms", BigInteger, primary_key=True),
    Column("kpi", JSON, nullable=False),
)

alerts = Table(
    "alerts", metadata,
    Column("alert_id", String(64), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("payload", JSON, nullable=False),
    PrimaryKeyConstraint("run_id", "alert_id", name="alerts_pkey"),
    Index("ix_alerts_run", "run_id", "ts_ms"),
)

guard_decisions = Table(
    "guard_decisions", metadata,
    Column("decision_id", String(64), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("guard", String(64), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("allowed", Boolean, nullable=False),
    Column("detail", Text, nullable=False),
    PrimaryKeyConstraint("run_id", "decision_id", name="guard_decisions_pkey"),
    Index("ix_guard_decisions_run", "run_id", "ts_ms"),
)

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_ms", BigInteger, nullable=False),
)

TABLES = {t.name: t for t in (runs, orders, fills, round_trips, kpi_checkpoints, alerts,
                              guard_decisions)}

# The id that keys each record table within a run (with run_id): what a resuming writer reads back.
RECORD_IDS = {"orders": "order_id", "fills": "fill_id", "round_trips": "position_id",
              "alerts": "alert_id", "guard_decisions": "decision_id"}
