"""The Grafana dashboard parses and only queries metric series the registry really exposes."""
from __future__ import annotations

import json
import re

from config.paths import REPO
from metrics.registry import build_metrics, exposed_names

DASHBOARD = REPO / "metrics" / "grafana_dashboard.json"


def _queried_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (ours all start with arb_)."""
    return set(re.findall(r"\barb_[a-z0-9_]+", expr))


def test_dashboard_is_valid_json_with_unique_panels_and_queries():
    board = json.loads(DASHBOARD.read_text())
    assert board["title"] and board["uid"] and isinstance(board["schemaVersion"], int)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) >= 10
    for panel in board["panels"]:
        assert panel["type"] in {"stat", "timeseries", "gauge", "table"}, panel["title"]
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]


def test_every_queried_metric_exists_in_the_registry():
    board = json.loads(DASHBOARD.read_text())
    exposed = exposed_names(build_metrics().registry)
    queried = {name for panel in board["panels"] for t in panel["targets"]
               for name in _queried_names(t["expr"])}
    assert queried - exposed == set()
    # The core KPIs and the hop latencies are all on the board.
    for name in ("arb_pnl_krw", "arb_win_rate", "arb_round_trips_total", "arb_open_positions",
                 "arb_guard_triggers_total", "arb_alerts_sent_total",
                 "arb_hop_latency_seconds_bucket", "arb_snapshot_writes_total",
                 "arb_book_updates_total", "arb_round_trips_per_hour"):
        assert name in queried, name


def test_name_check_would_catch_a_typo():
    exposed = exposed_names(build_metrics().registry)
    assert _queried_names("rate(arb_round_trip_total[5m])") - exposed == {"arb_round_trip_total"}
