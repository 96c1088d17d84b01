"""Live-trading safety: fail-closed arming, masked secrets, log redaction and preflight checks.

Nothing here places an order. These pieces decide whether live trading may start at all, and
keep API keys out of logs, snapshots, the database and alerts.
"""
