"""Restart budget: exponential back-off within a sliding window, None (escalate) when spent."""
from __future__ import annotations

import pytest

from supervisors.policy import RestartBudget, RestartPolicy
from supervisors.records import RestartRecord


def test_back_off_doubles_until_the_window_budget_is_spent():
    budget = RestartBudget(RestartPolicy(max_restarts=4, window_s=60, backoff_base_s=0.05, backoff_factor=2,
                                         backoff_max_s=0.15))
    delays = []
    for t in (0.0, 1.0, 2.0, 3.0):
        delays.append(budget.delay(t))
        budget.spend(t)
    assert delays == [0.05, 0.1, 0.15, 0.15]          # capped at backoff_max_s
    assert budget.delay(4.0) is None and budget.used(4.0) == 4


def test_restarts_older_than_the_window_no_longer_count():
    budget = RestartBudget(RestartPolicy(max_restarts=2, window_s=10, backoff_base_s=0.1))
    budget.spend(0.0)
    budget.spend(5.0)
    assert budget.delay(9.9) is None
    assert budget.delay(10.0) == pytest.approx(0.2) and budget.used(10.0) == 1   # the first left the window
    assert budget.delay(15.0) == pytest.approx(0.1) and budget.used(15.0) == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"max_restarts": 0}, "max_restarts must be >= 1"),
    ({"window_s": 0}, "window_s must be > 0"),
    ({"backoff_factor": 0.5}, "backoff_factor >= 1"),
    ({"backoff_base_s": 2.0, "backoff_max_s": 1.0}, "backoff_max_s >= backoff_base_s"),
    ({"max_missed_pings": 0}, "max_missed_pings must be >= 1"),
    ({"ready_timeout_s": -1}, "ready_timeout_s must be > 0"),
])
def test_a_bad_policy_is_refused_naming_the_setting(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RestartPolicy(**kwargs)


def test_a_restart_record_reports_death_to_trading_time():
    rec = RestartRecord("coordinator", 2, "died: killed", 100.0, 100.75, 101.25)
    assert rec.death_to_trading_s == pytest.approx(1.25)
    assert rec.to_dict()["death_to_trading_s"] == 1.25
    assert rec.line() == ("supervisor: coordinator restart #2 (died: killed): death detected -> restarted "
                          "0.750 s -> trading again 1.250 s")
