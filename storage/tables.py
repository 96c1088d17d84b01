"""SQLAlchemy Core tables for runs, orders, fills, round trips, KPIs, alerts and guard decisions."""
from __future__ import annotations

from sqlalchemy import (JSON, BigInteger, Boolean, Column, Double, Index, Integer, MetaData, String,
                        Table, Text)

metadata = MetaData()

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
    Column("order_id", String(128), primary_key=True),
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
    Index("ix_orders_run", "run_id", "ts_ms"),
)

# Columns mirror domain.orders.Fill.
fills = Table(
    "fills", metadata,
    Column("fill_id", String(128), primary_key=True),
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
    Index("ix_fills_run", "run_id", "ts_ms"),
)

# Columns mirror domain.orders.RoundTrip.
round_trips = Table(
    "round_trips", metadata,
    Column("position_id", String(128), primary_key=True),
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
    Column("alert_id", String(64), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("payload", JSON, nullable=False),
    Index("ix_alerts_run", "run_id", "ts_ms"),
)

guard_decisions = Table(
    "guard_decisions", metadata,
    Column("decision_id", String(64), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("guard", String(64), nullable=False),
    Column("tier", String(16), nullable=False),
    Column("allowed", Boolean, nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_guard_decisions_run", "run_id", "ts_ms"),
)

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_ms", BigInteger, nullable=False),
)

TABLES = {t.name: t for t in (runs, orders, fills, round_trips, kpi_checkpoints, alerts,
                              guard_decisions)}
