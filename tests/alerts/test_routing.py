"""Routing, throttling and summaries, driven by a fake clock (the router is pure)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from alerts.events import Alert, Severity
from alerts.routing import (LOG_CHANNEL, SUMMARY_KIND, AlertRouter, RoutingTable,
                            ThrottlePolicy)

ALL = ("log", "slack", "telegram")


def _alert(sev=Severity.P2, kind="feed_gap", symbol="BTC", ts=0, source="feed.upbit"):
    return Alert(severity=sev, kind=kind, source=source, symbol=symbol,
                 message=f"{kind} on {symbol}", ts_ms=ts)


def _router(window_ms=60_000, max_per_window=1, p2_to_chat=True):
    table = RoutingTable.default(["telegram", "slack"], p2_to_chat=p2_to_chat)
    return AlertRouter(table, ThrottlePolicy(window_ms, max_per_window))


def test_default_table_routes_by_severity():
    table = RoutingTable.default(["telegram", "slack"])
    assert table.channels_for(Severity.P0) == set(ALL)
    assert table.channels_for(Severity.P1) == set(ALL)
    assert table.channels_for(Severity.P2) == set(ALL)
    assert table.channels_for(Severity.P3) == {LOG_CHANNEL}
    quiet = RoutingTable.default(["slack"], p2_to_chat=False)
    assert quiet.channels_for(Severity.P2) == {LOG_CHANNEL}
    assert quiet.channels_for(Severity.P1) == {"log", "slack"}


def test_table_from_config_adds_log_and_rejects_unknown_channels():
    table = RoutingTable.from_mapping({"P0": ["telegram"], "p2": []}, ["telegram", "slack"])
    assert table.channels_for(Severity.P0) == {"log", "telegram"}
    assert table.channels_for(Severity.P1) == {"log"}      # left out: log only
    with pytest.raises(ValueError, match=r"alerts\.routing\.P1: unknown channel 'telgram' "
                                         r"\(configured: log, slack, telegram\)"):
        RoutingTable.from_mapping({"P1": ["telgram"]}, ["telegram", "slack"])
    with pytest.raises(ValueError, match=r"alerts\.routing key: 'P7' is not a severity"):
        RoutingTable.from_mapping({"P7": []}, [])
    with pytest.raises(ValueError, match=r"alerts\.routing\.P0: expected a list"):
        RoutingTable.from_mapping({"P0": "slack"}, ["slack"])


def test_throttle_policy_bounds():
    with pytest.raises(ValueError, match="window_ms must be > 0"):
        ThrottlePolicy(window_ms=0)
    with pytest.raises(ValueError, match="max_per_window must be >= 1"):
        ThrottlePolicy(max_per_window=0)


def test_repeats_within_the_window_are_held_from_chat_but_logged():
    router = _router()
    first = router.route(_alert(ts=0), now_ms=0)
    assert [d.channels for d in first.deliveries] == [ALL]
    second = router.route(_alert(ts=1_000), now_ms=1_000)
    assert [d.channels for d in second.deliveries] == [("log",)]
    assert second.throttled == ("slack", "telegram")
    assert router.held() == 1


def test_window_close_emits_one_summary_with_the_count():
    router = _router()
    router.route(_alert(), now_ms=0)
    for t in range(1, 13):
        router.route(_alert(ts=t * 1000), now_ms=t * 1000)
    assert router.tick(59_999) == []
    [summary] = router.tick(60_000)
    assert summary.alert.kind == SUMMARY_KIND
    assert summary.alert.message == "12 more feed_gap alerts for BTC in the last 60 s"
    assert summary.alert.fields["suppressed"] == 12
    assert summary.channels == ALL
    assert router.held() == 0
    # The next alert opens a fresh window and goes out at once.
    again = router.route(_alert(ts=61_000), now_ms=61_000)
    assert [d.channels for d in again.deliveries] == [ALL]


def test_summary_rides_ahead_of_the_alert_that_finds_the_window_closed():
    router = _router(window_ms=10_000)
    router.route(_alert(), now_ms=0)
    router.route(_alert(), now_ms=5_000)
    result = router.route(_alert(), now_ms=10_000)
    kinds = [d.alert.kind for d in result.deliveries]
    assert kinds == [SUMMARY_KIND, "feed_gap"]
    assert result.deliveries[0].alert.message == "1 more feed_gap alert for BTC in the last 10 s"


def test_keys_are_kind_and_symbol():
    router = _router()
    router.route(_alert(symbol="BTC"), 0)
    assert router.route(_alert(symbol="ETH"), 1).throttled == ()
    assert router.route(_alert(kind="restart", symbol="BTC"), 2).throttled == ()
    assert router.route(_alert(symbol=None), 3).throttled == ()
    assert router.route(_alert(symbol="ETH"), 4).throttled == ("slack", "telegram")


def test_p0_is_never_throttled_and_p3_never_reaches_chat():
    router = _router()
    for t in range(5):
        result = router.route(_alert(sev=Severity.P0, kind="kill_switch"), t)
        assert [d.channels for d in result.deliveries] == [ALL]
        assert result.throttled == ()
        p3 = router.route(_alert(sev=Severity.P3, kind="fill"), t)
        assert [d.channels for d in p3.deliveries] == [("log",)]
    assert router.flush(10) == []


def test_flush_summarises_open_windows_with_worst_severity_and_elapsed_time():
    router = _router(max_per_window=2)
    for t, sev in enumerate([Severity.P2, Severity.P2, Severity.P2, Severity.P1, Severity.P2]):
        router.route(_alert(sev=sev, symbol=None, kind="restart"), t * 1000)
    [summary] = router.flush(20_000)
    assert summary.alert.severity is Severity.P1
    assert summary.alert.message == "3 more restart alerts in the last 20 s"
    assert router.flush(20_001) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(list(Severity)), st.sampled_from(["BTC", "ETH", None]),
                          st.integers(0, 30_000)), max_size=60),
       st.integers(1, 3))
def test_every_alert_reaches_chat_or_a_summary(events, max_per_window):
    """Conservation: nothing routed to chat is lost; it is sent or counted in a summary."""
    router = _router(window_ms=20_000, max_per_window=max_per_window)
    now = 0
    to_chat = sent_to_chat = summarised = 0
    for sev, symbol, step in events:
        now += step
        alert = _alert(sev=sev, symbol=symbol, ts=now)
        to_chat += sev <= Severity.P2
        result = router.route(alert, now)
        for d in result.deliveries:
            if d.alert.kind == SUMMARY_KIND:
                summarised += d.alert.fields["suppressed"]
            elif "slack" in d.channels:
                sent_to_chat += 1
            assert "log" in d.channels
    summarised += sum(d.alert.fields["suppressed"] for d in router.flush(now))
    assert sent_to_chat + summarised == to_chat
