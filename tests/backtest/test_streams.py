"""A books file names its coins, so a ranked universe (top_n) works on recorded and generated files."""
from __future__ import annotations

import pytest

from backtest.runner import run_backtest, universe
from backtest.streams import Stream, from_profile
from config.loader import load_profile
from marketdata.parquet_books import book_coins, read_books, write_books
from marketdata.synthetic import SyntheticConfig, SyntheticMarket
from tests.config.support import variant


def _profile_on(tmp_path, path, top_n):
    def change(doc):
        doc["universe"] = {"top_n": top_n}
        doc["data"] = {"kind": "books", "books": str(path)}
    return load_profile(variant(tmp_path, "backtest-synthetic", change))


def test_top_n_takes_the_generators_ranking_from_the_file(tmp_path):
    market = SyntheticMarket(SyntheticConfig(coins=4, days=0.003, seed=5))
    path = tmp_path / "ranked.parquet"
    market.write(path)
    profile = _profile_on(tmp_path, path, 2)
    stream = from_profile(profile)
    assert stream.symbols == market.coins and universe(profile, stream) == list(market.coins[:2])
    assert any("top 2 of the 4 coins" in note and "file's own ranking" in note for note in stream.notes)
    result = run_backtest(profile, out_root=tmp_path, progress=False, report=False)
    assert result.kpi["universe"] == sorted(market.coins[:2]) and result.kpi["book_events"] > 0


def test_a_file_without_a_ranking_ranks_coins_by_book_updates(tmp_path):
    market = SyntheticMarket(SyntheticConfig(coins=3, days=0.002, seed=5))
    quiet = market.coins[0]
    books = [b for i, b in enumerate(market.books()) if b.symbol != quiet or i % 3 == 0]  # the first coin updates less
    path = tmp_path / "plain.parquet"
    write_books(path, books, source="test", synthetic=True)
    assert book_coins(path) == (*sorted(market.coins[1:]), quiet)
    assert [b.symbol for b in read_books(path)][:1]   # the file is readable as written


def test_a_stream_that_does_not_list_its_coins_is_refused_for_top_n(tmp_path):
    profile = load_profile("backtest-synthetic")
    with pytest.raises(ValueError, match="universe.top_n.*name them in universe.symbols"):
        universe(profile, Stream((), (), True, "somewhere.csv"))


def test_the_shipped_synthetic_profile_trades_net_of_its_real_fees(tmp_path):
    """backtest-synthetic's z-score window is sized to the calibrated premium, so the demo trades."""
    from bench.scenarios import synthetic_profile, synthetic_stream
    result = run_backtest(synthetic_profile(6, trading=False), out_root=tmp_path, stream=synthetic_stream(6, 0.5),
                          progress=False, report=False)
    kpi = result.kpi
    assert kpi["round_trips"] >= 5 and kpi["fees_paid_krw"] > 0
    assert kpi["synthetic_data"] and any("SYNTHETIC" in note for note in kpi["notes"])
    assert kpi["win_rate_pct"] < 100
