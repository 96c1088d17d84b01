"""inventory_per_coin_krw: every universe coin held on both venues, converted at its first Upbit mid."""
from __future__ import annotations

import pytest

from backtest.runner import starting_balances, start_mids
from bench.scenarios import synthetic_profile, synthetic_stream
from tests.config.support import assert_names, error_of, variant


def test_every_coin_gets_its_krw_worth_at_the_first_upbit_mid():
    profile = synthetic_profile(3, trading=False)
    stream = synthetic_stream(3, 0.001)
    coins = list(stream.symbols)
    cols = next(stream.columns())
    first = cols.venue_code == cols.venues.index("upbit")
    balances = starting_balances(profile, coins, stream)
    for coin in coins:
        row = next(i for i in range(len(cols)) if first[i] and cols.symbols[cols.symbol_code[i]] == coin)
        mid = (cols.bid_px[row, 0] + cols.ask_px[row, 0]) / 2
        for venue in ("upbit", "binance"):
            assert balances[(venue, coin)] == pytest.approx(20_000_000 / mid, rel=1e-8)
    assert balances[("upbit", "KRW")] == 1_000_000_000  # the profile's cash stays as given


def test_a_coin_missing_from_the_data_is_named():
    stream = synthetic_stream(2, 0.001)
    with pytest.raises(ValueError, match=r"no Upbit book with both sides for \['DOGE'\]"):
        start_mids(stream.columns(), ["BTC", "DOGE"])


def test_the_kpi_notes_say_how_coins_were_seeded(tmp_path):
    from backtest.runner import run_backtest
    result = run_backtest(synthetic_profile(2, trading=False), out_root=tmp_path, stream=synthetic_stream(2, 0.002),
                          progress=False, report=False)
    assert any("inventory" in note and "first Upbit mid" in note for note in result.kpi["notes"])


def test_a_perp_venue_is_refused(tmp_path):
    path = variant(tmp_path, "backtest-synthetic",
                   lambda d: d.__setitem__("inventory_per_coin_krw", {"upbit": 1e6, "binance_usdm": 1e6}))
    assert_names(error_of(path), path, "inventory_per_coin_krw.binance_usdm", "spot venue")


def test_candle_data_is_refused(tmp_path):
    path = variant(tmp_path, "backtest-btc", lambda d: d.__setitem__("inventory_per_coin_krw", {"upbit": 1e6}))
    assert_names(error_of(path), path, "inventory_per_coin_krw", "books data")
