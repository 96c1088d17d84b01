"""Telemetry batches: counters summed as deltas, gauges last value, samples kept; bad entries named."""
from __future__ import annotations

import pytest

from metrics.batch import BatchBuffer, apply_batch
from metrics.registry import SPECS, build_metrics, check_update


def test_buffer_sums_counters_keeps_last_gauge_and_every_sample():
    buf = BatchBuffer()
    buf.add("inc", "book_updates", {"venue": "upbit"}, 3)
    buf.add("inc", "book_updates", {"venue": "upbit"}, 4)
    buf.add("inc", "book_updates", {"venue": "binance"}, 1)
    buf.add("set", "open_positions", {}, 5)
    buf.add("set", "open_positions", {}, 2)
    buf.add("observe", "hop_latency", {"hop": "feed_to_strategy"}, 0.002)
    buf.add("observe", "hop_latency", {"hop": "feed_to_strategy"}, 0.004)
    assert buf.updates == 7
    batch = buf.take("feed-upbit")
    assert batch == {"source": "feed-upbit",
                     "inc": [["book_updates", {"venue": "upbit"}, 7], ["book_updates", {"venue": "binance"}, 1]],
                     "set": [["open_positions", {}, 2]],
                     "observe": [["hop_latency", {"hop": "feed_to_strategy"}, [0.002, 0.004]]]}
    assert buf.take("feed-upbit") is None and buf.updates == 0


def test_applying_two_senders_batches_adds_their_deltas():
    metrics = build_metrics()
    for source, n in (("feed-upbit", 3), ("feed-binance", 4)):
        buf = BatchBuffer()
        buf.add("inc", "round_trips", {}, n)
        buf.add("observe", "hop_latency", {"hop": "feed_to_order"}, 0.003 * n)
        assert apply_batch(metrics, buf.take(source)) == (2, [])
    sample = metrics.registry.get_sample_value
    assert sample("arb_round_trips_total") == 7
    assert sample("arb_hop_latency_seconds_count", {"hop": "feed_to_order"}) == 2
    assert sample("arb_hop_latency_seconds_bucket", {"hop": "feed_to_order", "le": "0.01"}) == 1


def test_a_bad_entry_is_named_and_the_others_still_apply():
    metrics = build_metrics()
    batch = {"source": "strategy-3",
             "inc": [["round_trip", {}, 1], ["round_trips", {}, 2]],
             "set": [["win_rate", {}, 1.5]],
             "observe": [["hop_latency", {"hop": "feed_to_strategy"}, [0.001, -0.5]],
                         ["hop_latency", {"hop": "feed_to_strategy"}, [0.002]]]}
    applied, problems = apply_batch(metrics, batch)
    assert applied == 2         # round_trips and the one good sample
    assert problems[0].startswith("telemetry batch from strategy-3: inc[0]: metrics: unknown metric 'round_trip'")
    assert "set[0]: metrics: win_rate 1.5 outside [0, 1]" in problems[1]
    assert "observe[0]: metrics: negative latency -0.5 s" in problems[2]
    sample = metrics.registry.get_sample_value
    assert sample("arb_round_trips_total") == 2
    # the half-bad observe entry applied nothing: one sample, from observe[1]
    assert sample("arb_hop_latency_seconds_count", {"hop": "feed_to_strategy"}) == 1
    assert apply_batch(metrics, ["inc"]) == (0, ["telemetry batch: expected a mapping, got list"])
    assert apply_batch(metrics, {"source": "x", "gauge": []})[1] == [
        "telemetry batch from x: unknown key(s) gauge"]
    assert "expected [metric, {labels}, value" in apply_batch(metrics, {"source": "x", "inc": [["round_trips", 1]]})[1][0]


@pytest.mark.parametrize("verb, attr, labels, value, message", [
    ("inc", "pnl_krw", {}, 1, r"pnl_krw is a gauge; use set\(\), not inc\(\)"),
    ("observe", "hop_latency", {"venue": "upbit"}, 0.1, r"hop_latency takes labels \(hop\), got \(venue\)"),
    ("inc", "book_updates", {"venue": "kraken"}, 1, r"unknown venue 'kraken' for book_updates"),
    ("inc", "round_trips", {}, -1, r"counter round_trips cannot go down"),
    ("set", "open_positions", {}, float("nan"), r"open_positions value nan is not a finite number"),
    ("set", "pnl_krw", {}, "12", r"pnl_krw value '12' is not a finite number"),
])
def test_check_update_refuses_nonsense_naming_it(verb, attr, labels, value, message):
    with pytest.raises(ValueError, match=message):
        check_update(verb, attr, labels, value)


def test_every_spec_is_a_metric_of_the_registry_with_its_labels():
    families = {f.name: f for f in build_metrics().registry.collect()}
    for spec in SPECS.values():
        family_name = spec.name.removesuffix("_total")
        assert families[family_name].type == spec.kind, spec.attr
        for label, values in spec.allowed.items():
            assert label in spec.labels and values, spec.attr
