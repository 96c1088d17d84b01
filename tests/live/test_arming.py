"""Arming refuses live trading for each missing or wrong condition, by name, and passes when all hold."""
from __future__ import annotations

import pytest

from domain.venues import Venue
from live.arming import (ACK, API_KEYS, ARMED_AT, CONDITIONS, PER_ORDER_CAP, TOTAL_CAP, ArmingConfig,
                         LiveRefused, NotionalCaps, check_arming, parse_arming_time, require_armed)
from live.secrets import ApiKeys, Secret

NOW_MS = 1_714_560_000_000  # 2024-05-01T10:40:00Z
CONFIG = ArmingConfig()
VENUES = (Venue.UPBIT, Venue.BINANCE)
GOOD_CAPS = NotionalCaps(per_order_krw=1_000_000, total_krw=20_000_000)


def good_env(**over: str) -> dict[str, str]:
    env = {"ARB_LIVE_ACK": CONFIG.ack_value, "ARB_LIVE_ARMED_AT": str(NOW_MS // 1000 - 60)}
    env.update(over)
    return env


def keys_for(*accounts: str) -> dict[str, ApiKeys]:
    return {a: ApiKeys(a, Secret(f"{a}-access-key-123456"), Secret(f"{a}-secret-key-abcdef"), "test")
            for a in accounts}


GOOD_KEYS = keys_for("upbit", "binance")


def failed(env=None, caps=GOOD_CAPS, venues=VENUES, keys=GOOD_KEYS, now_ms=NOW_MS, **kw):
    result = check_arming(env if env is not None else good_env(), CONFIG, caps, venues, keys, now_ms, **kw)
    return {f.name: f.message for f in result.failures}


def test_all_good_is_armed():
    result = require_armed(good_env(), CONFIG, GOOD_CAPS, VENUES, GOOD_KEYS, NOW_MS)
    assert result.armed and result.failures == ()


def test_iso_utc_arming_time_is_accepted():
    assert failed(good_env(ARB_LIVE_ARMED_AT="2024-05-01T10:35:00Z")) == {}


def test_missing_ack_refused():
    env = good_env()
    del env["ARB_LIVE_ACK"]
    problems = failed(env)
    assert list(problems) == [ACK] and "ARB_LIVE_ACK is not set" in problems[ACK]


def test_wrong_ack_refused_even_if_close():
    problems = failed(good_env(ARB_LIVE_ACK=CONFIG.ack_value.lower()))
    assert list(problems) == [ACK] and "not exactly" in problems[ACK]


def test_missing_arming_time_refused():
    env = good_env()
    del env["ARB_LIVE_ARMED_AT"]
    assert list(failed(env)) == [ARMED_AT]


def test_stale_arming_time_refused():
    problems = failed(good_env(ARB_LIVE_ARMED_AT=str(NOW_MS // 1000 - 601)))
    assert list(problems) == [ARMED_AT] and "601s old" in problems[ARMED_AT]


def test_future_arming_time_refused_beyond_skew():
    assert failed(good_env(ARB_LIVE_ARMED_AT=str(NOW_MS // 1000 + 20))) == {}
    problems = failed(good_env(ARB_LIVE_ARMED_AT=str(NOW_MS // 1000 + 31)))
    assert list(problems) == [ARMED_AT] and "in the future" in problems[ARMED_AT]


def test_milliseconds_arming_time_refused_with_hint():
    problems = failed(good_env(ARB_LIVE_ARMED_AT=str(NOW_MS)))
    assert "milliseconds given" in problems[ARMED_AT]


@pytest.mark.parametrize("raw", ["yesterday", "2024-05-01T10:35:00", "-5", "nan"])
def test_malformed_arming_time_refused(raw):
    problems = failed(good_env(ARB_LIVE_ARMED_AT=raw))
    assert list(problems) == [ARMED_AT] and repr(raw) in problems[ARMED_AT]


def test_parse_arming_time_converts_offsets_to_utc():
    assert parse_arming_time("2024-05-01T19:40:00+09:00") == NOW_MS
    assert parse_arming_time("1714560000.5") == NOW_MS + 500


@pytest.mark.parametrize("per_order", [None, 4_999, 10_000_001, float("nan")])
def test_per_order_cap_missing_or_out_of_bounds_refused(per_order):
    problems = failed(caps=NotionalCaps(per_order_krw=per_order, total_krw=20_000_000))
    assert list(problems) == [PER_ORDER_CAP] and "per-order" in problems[PER_ORDER_CAP]


@pytest.mark.parametrize("total", [None, 100_000_001])
def test_total_cap_missing_or_out_of_bounds_refused(total):
    problems = failed(caps=NotionalCaps(per_order_krw=1_000_000, total_krw=total))
    assert list(problems) == [TOTAL_CAP] and "total" in problems[TOTAL_CAP]


def test_total_cap_below_per_order_cap_refused():
    problems = failed(caps=NotionalCaps(per_order_krw=5_000_000, total_krw=1_000_000))
    assert list(problems) == [TOTAL_CAP] and "below the per-order cap" in problems[TOTAL_CAP]


def test_missing_keys_for_a_traded_venue_refused():
    problems = failed(keys=keys_for("upbit"))
    assert list(problems) == [API_KEYS] and "binance" in problems[API_KEYS]
    assert "upbit" not in problems[API_KEYS]


def test_perp_venue_needs_the_binance_account():
    assert failed(venues=(Venue.UPBIT, Venue.BINANCE_USDM), keys=keys_for("upbit", "binance")) == {}
    assert API_KEYS in failed(venues=(Venue.UPBIT, Venue.BINANCE_USDM), keys=keys_for("upbit"))


def test_key_loading_problem_is_reported_as_api_keys():
    problems = failed(keys={}, keys_problem="secrets file /x: is tracked by git")
    assert problems == {API_KEYS: "secrets file /x: is tracked by git"}


def test_every_condition_reported_at_once_and_raised():
    with pytest.raises(LiveRefused) as info:
        require_armed({}, CONFIG, NotionalCaps(None, None), VENUES, {}, NOW_MS)
    assert [f.name for f in info.value.failures] == list(CONDITIONS)
    for name in CONDITIONS:
        assert f"- {name}:" in str(info.value)


def test_config_refuses_bad_bounds():
    with pytest.raises(ValueError, match="per_order_bounds_krw"):
        ArmingConfig(per_order_bounds_krw=(10.0, 1.0))
    with pytest.raises(ValueError, match="max_age_s"):
        ArmingConfig(max_age_s=3600)


def test_arming_opens_no_connection_and_runs_no_process(monkeypatch):
    import socket
    import subprocess

    def forbidden(*args, **kwargs):
        raise AssertionError("arming must do no I/O")
    monkeypatch.setattr(socket, "socket", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)
    monkeypatch.setattr(subprocess, "run", forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    assert require_armed(good_env(), CONFIG, GOOD_CAPS, VENUES, GOOD_KEYS, NOW_MS).armed
    assert not check_arming({}, CONFIG, NotionalCaps(None, None), VENUES, {}, NOW_MS).armed
