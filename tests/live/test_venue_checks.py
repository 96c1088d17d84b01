"""Each venue check passes on a healthy venue and fails, with a reason, when it should."""
from __future__ import annotations

import asyncio

import ccxt

from domain.venues import Venue
from live.preflight import Check, run_preflight
from live.secrets import ApiKeys, Secret
from live.venue_checks import (balance_check, clock_check, key_permissions_check, open_orders_check,
                               positions_check)
from tests.live.fake_exchange import FakeBinance, FakeUpbit

NOW = 1_714_560_000_000
UPBIT_KEYS = ApiKeys("upbit", Secret("upbit-access-key-0001"), Secret("upbit-secret-key-0001"), "test")


def run(coro):
    return asyncio.run(coro)


def fixed_clock(*values):
    it = iter(values)
    return lambda: next(it)


def test_clock_within_skew_passes():
    result = run(clock_check(Venue.BINANCE, FakeBinance(server_time_ms=NOW + 300), 1000,
                             fixed_clock(NOW - 40, NOW + 40)))
    assert result.ok and "skew +300 ms" in result.detail and "round trip 80 ms" in result.detail


def test_clock_skew_beyond_limit_fails():
    result = run(clock_check(Venue.UPBIT, FakeUpbit(server_time_ms=NOW - 2500), 1000, fixed_clock(NOW, NOW)))
    assert not result.ok and result.name == "upbit.clock" and "skew -2500 ms" in result.detail


def test_clock_garbage_time_fails():
    result = run(clock_check(Venue.UPBIT, FakeUpbit(server_time_ms=None), 1000, fixed_clock(NOW, NOW)))
    assert not result.ok and "not epoch milliseconds" in result.detail


def test_unreachable_venue_fails_through_the_runner():
    fake = FakeBinance(errors={"fetch_time": ccxt.NetworkError("binance GET /api/v3/time connection refused")})
    report = run(run_preflight([Check("binance.clock", lambda: clock_check(Venue.BINANCE, fake))]))
    assert not report.ok and "NetworkError" in report.results[0].detail


def test_binance_key_without_withdrawals_passes():
    assert run(key_permissions_check(Venue.BINANCE, FakeBinance(), None)).ok


def test_binance_key_with_withdrawals_fails():
    fake = FakeBinance(restrictions={"enableWithdrawals": True, "enableSpotAndMarginTrading": True})
    result = run(key_permissions_check(Venue.BINANCE, fake, None))
    assert not result.ok and "withdrawals are ENABLED" in result.detail


def test_binance_key_that_cannot_trade_futures_fails_for_usdm():
    fake = FakeBinance(restrictions={"enableWithdrawals": "false", "enableSpotAndMarginTrading": True,
                                     "enableFutures": False})
    assert run(key_permissions_check(Venue.BINANCE, fake, None)).ok
    result = run(key_permissions_check(Venue.BINANCE_USDM, fake, None))
    assert not result.ok and "enableFutures is off" in result.detail


def test_binance_without_restrictions_endpoint_fails_closed():
    result = run(key_permissions_check(Venue.BINANCE, FakeUpbit(), None))
    assert not result.ok and "cannot verify withdrawals" in result.detail


def test_binance_rejected_key_fails_through_the_runner():
    fake = FakeBinance(errors={"sapi_get_account_apirestrictions": ccxt.AuthenticationError('{"code":-2015}')})
    check = Check("binance.api_key", lambda: key_permissions_check(Venue.BINANCE, fake, None))
    (result,) = run(run_preflight([check])).results
    assert not result.ok and "AuthenticationError" in result.detail


def upbit_entry(key="upbit-access-key-0001", expire_at="2025-05-01T00:00:00+09:00"):
    return {"access_key": key, "expire_at": expire_at}


def test_upbit_listed_unexpired_key_passes_and_says_withdrawal_is_unreported():
    result = run(key_permissions_check(Venue.UPBIT, FakeUpbit(api_keys=[upbit_entry()]), UPBIT_KEYS,
                                       lambda: NOW))
    assert result.ok and "does not report withdrawal permission" in result.detail
    assert "upbit-access-key-0001" not in result.detail


def test_upbit_expired_key_fails():
    fake = FakeUpbit(api_keys=[upbit_entry(expire_at="2024-04-30T00:00:00Z")])
    result = run(key_permissions_check(Venue.UPBIT, fake, UPBIT_KEYS, lambda: NOW))
    assert not result.ok and "expired" in result.detail


def test_upbit_key_not_listed_fails_without_showing_the_key():
    fake = FakeUpbit(api_keys=[upbit_entry(key="someone-elses-access-key")])
    result = run(key_permissions_check(Venue.UPBIT, fake, UPBIT_KEYS, lambda: NOW))
    assert not result.ok and "is not among the 1 keys" in result.detail
    assert "upbit-access-key-0001" not in result.detail


def test_upbit_key_expiring_soon_passes_with_a_warning():
    fake = FakeUpbit(api_keys=[upbit_entry(expire_at="2024-05-03T00:00:00Z")])
    result = run(key_permissions_check(Venue.UPBIT, fake, UPBIT_KEYS, lambda: NOW))
    assert result.ok and "renew" in result.detail


def test_balances_enough_pass_and_short_fail():
    fake = FakeUpbit(free={"KRW": 50_000_000, "BTC": 0.2})
    assert run(balance_check(Venue.UPBIT, fake, {"KRW": 40_000_000, "BTC": 0.2})).ok
    result = run(balance_check(Venue.UPBIT, fake, {"KRW": 40_000_000, "BTC": 0.25, "ETH": 1}))
    assert not result.ok
    assert result.detail == "BTC free 0.2 < required 0.25; ETH free 0 < required 1"


def test_unknown_open_order_fails_and_known_pass():
    order = {"id": "8123", "symbol": "BTC/USDT", "side": "sell", "amount": 0.01}
    fake = FakeBinance(open_orders=[order])
    assert run(open_orders_check(Venue.BINANCE, fake, frozenset({"8123"}))).ok
    result = run(open_orders_check(Venue.BINANCE, fake, frozenset()))
    assert not result.ok and "8123 BTC/USDT sell 0.01" in result.detail


def test_an_open_order_known_by_our_client_id_passes():
    """A resumed run knows its orders by client id (live.resume): those are ours, anything else is foreign."""
    ours = {"id": "8123", "clientOrderId": "1a2b3c4d-BTC-p1-entry-binance-1", "symbol": "BTC/USDT", "side": "buy",
            "amount": 0.01}
    stray = {"id": "9001", "clientOrderId": "web_8f1e", "symbol": "BTC/USDT", "side": "sell", "amount": 0.02}
    known = frozenset({"1a2b3c4d-BTC-p1-entry-binance-1"})
    assert run(open_orders_check(Venue.BINANCE, FakeBinance(open_orders=[ours]), known)).ok
    result = run(open_orders_check(Venue.BINANCE, FakeBinance(open_orders=[ours, stray]), known))
    assert not result.ok and result.detail.startswith("1 unknown open order(s): 9001 BTC/USDT sell 0.02")


def test_positions_must_match_our_records():
    short = {"symbol": "BTC/USDT:USDT", "contracts": 0.01, "side": "short"}
    flat = {"symbol": "ETH/USDT:USDT", "contracts": 0, "side": "long"}
    fake = FakeBinance(positions=[short, flat])
    assert run(positions_check(Venue.BINANCE_USDM, fake, {"BTC/USDT:USDT": -0.01})).ok
    unknown = run(positions_check(Venue.BINANCE_USDM, fake, {}))
    assert not unknown.ok and "BTC/USDT:USDT venue -0.01 vs ours 0" in unknown.detail
    missing = run(positions_check(Venue.BINANCE_USDM, FakeBinance(positions=[flat]), {"BTC/USDT:USDT": -0.01}))
    assert not missing.ok and "venue 0 vs ours -0.01" in missing.detail


def test_ccxt_clients_have_the_endpoints_the_checks_call():
    import ccxt.async_support as accxt
    for exchange in (accxt.binance(), accxt.binanceusdm()):
        assert callable(exchange.sapi_get_account_apirestrictions)
        assert all(callable(getattr(exchange, m)) for m in
                   ("fetch_time", "fetch_balance", "fetch_open_orders", "fetch_positions"))
    assert callable(accxt.upbit().private_get_api_keys)
