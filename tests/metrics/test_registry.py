"""Metric definitions: names, labels, buckets, checked helpers, and isolated registries."""
from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from metrics.registry import HOPS, LATENCY_BUCKETS_S, build_metrics, exposed_names


def test_every_required_metric_is_defined_with_help_text():
    metrics = build_metrics()
    families = {f.name: f for f in metrics.registry.collect()}
    expected = {"arb_pnl_krw": "gauge", "arb_win_rate": "gauge", "arb_round_trips": "counter",
                "arb_round_trips_per_hour": "gauge", "arb_open_positions": "gauge",
                "arb_guard_triggers": "counter", "arb_alerts_sent": "counter",
                "arb_alerts_undelivered": "counter", "arb_book_updates": "counter",
                "arb_snapshot_writes": "counter", "arb_hop_latency_seconds": "histogram"}
    assert {name: families[name].type for name in expected} == expected
    assert all(families[name].documentation for name in expected)


def test_hop_histogram_spans_a_tenth_of_a_millisecond_to_a_second():
    metrics = build_metrics()
    assert LATENCY_BUCKETS_S[0] == 0.0001 and LATENCY_BUCKETS_S[-1] == 1.0
    metrics.observe_hop("feed_to_strategy", 0.0004)
    metrics.observe_hop("feed_to_strategy", 0.3)
    sample = metrics.registry.get_sample_value
    labels = {"hop": "feed_to_strategy"}
    assert sample("arb_hop_latency_seconds_bucket", labels | {"le": "0.00025"}) == 0
    assert sample("arb_hop_latency_seconds_bucket", labels | {"le": "0.0005"}) == 1
    assert sample("arb_hop_latency_seconds_bucket", labels | {"le": "0.5"}) == 2
    assert sample("arb_hop_latency_seconds_count", labels) == 2
    # Every hop shows up (at zero) before its first observation, so dashboards have series.
    for hop in HOPS:
        assert sample("arb_hop_latency_seconds_count", {"hop": hop}) is not None


def test_helpers_reject_values_that_would_make_nonsense_series():
    metrics = build_metrics()
    with pytest.raises(ValueError, match=r"unknown hop 'feed_to_moon'"):
        metrics.observe_hop("feed_to_moon", 0.001)
    with pytest.raises(ValueError, match="negative latency"):
        metrics.observe_hop("feed_to_order", -0.001)
    with pytest.raises(ValueError, match=r"win_rate 1.5 outside \[0, 1\]"):
        metrics.set_kpis(pnl_krw=0, win_rate=1.5, round_trips_per_hour=0, open_positions=0)
    with pytest.raises(ValueError, match="unknown alert outcome"):
        metrics.alert_outcome("slack", "P1", "lost")


def test_two_registries_in_one_process_do_not_collide():
    first, second = build_metrics(), build_metrics(CollectorRegistry())
    first.round_trips.inc(3)
    first.guard_triggered("daily_loss")
    assert first.registry.get_sample_value("arb_round_trips_total") == 3
    assert second.registry.get_sample_value("arb_round_trips_total") == 0
    assert second.registry.get_sample_value("arb_guard_triggers_total", {"guard": "daily_loss"}) is None
    assert "arb_hop_latency_seconds_bucket" in exposed_names(second.registry)
