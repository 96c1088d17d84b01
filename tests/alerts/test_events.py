"""Alert records: validation with clear messages, and a lossless dict round trip."""
from __future__ import annotations

import json

import pytest

from alerts.events import Alert, Severity


def _alert(**overrides):
    base = dict(severity=Severity.P1, kind="leg_risk", source="coordinator", symbol="BTC",
                message="binance leg filled 0.4 of 1.0", ts_ms=1_700_000_000_000,
                fields={"filled": 0.4, "requested": 1.0, "venue": "binance", "unwound": False})
    base.update(overrides)
    return Alert(**base)


def test_round_trip_through_json_keeps_every_field():
    alert = _alert()
    back = Alert.from_dict(json.loads(json.dumps(alert.to_dict())))
    assert back == alert
    assert alert.to_dict()["severity"] == "P1"


def test_severity_parses_names_and_numbers_and_rejects_others():
    assert Severity.parse("p2") is Severity.P2
    assert Severity.parse(0) is Severity.P0
    with pytest.raises(ValueError, match=r"cfg\.sev: 'P9' is not a severity"):
        Severity.parse("P9", "cfg.sev")
    with pytest.raises(ValueError, match="not a severity"):
        Severity.parse(True)


def test_fields_are_copied_so_the_caller_cannot_change_a_sent_alert():
    fields = {"gap_ms": 1200}
    alert = _alert(fields=fields)
    fields["gap_ms"] = 0
    assert alert.fields["gap_ms"] == 1200


@pytest.mark.parametrize("overrides, message", [
    ({"kind": ""}, r"alert\.kind: expected a non-empty string"),
    ({"source": None}, r"alert\.source: expected a non-empty string"),
    ({"symbol": ""}, r"alert\.symbol"),
    ({"ts_ms": -1}, r"alert\.ts_ms: expected a non-negative int"),
    ({"ts_ms": 1.5}, r"alert\.ts_ms"),
    ({"fields": {"book": [1, 2]}}, r"alert\.fields\['book'\]: list is not a scalar"),
    ({"fields": {3: "x"}}, r"alert\.fields: key 3 is not a string"),
    ({"severity": "urgent"}, r"alert\.severity: 'urgent' is not a severity"),
])
def test_bad_alerts_are_rejected_naming_the_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        _alert(**overrides)


def test_from_dict_names_where_the_bad_record_was():
    raw = _alert().to_dict()
    del raw["kind"], raw["ts_ms"]
    with pytest.raises(ValueError, match=r"snapshot\.pending\[3\]: missing key\(s\) kind, ts_ms"):
        Alert.from_dict(raw, where="snapshot.pending[3]")
    bad = _alert().to_dict() | {"ts_ms": "yesterday"}
    with pytest.raises(ValueError, match=r"snapshot\[0\]: alert\.ts_ms"):
        Alert.from_dict(bad, where="snapshot[0]")
