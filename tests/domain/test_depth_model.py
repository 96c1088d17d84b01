"""Depth model fitted on the real 2025-08-24 20-level books reproduces their spread and depth."""
from __future__ import annotations

from pathlib import Path
from statistics import median

import pytest

from domain.book import Book
from domain.depth_model import DepthModel, fit_venue_depth
from marketdata.calibration import fitted_depth_model
from marketdata.importers import read_books_jsonl, read_candles_csv


@pytest.fixture(scope="module")
def real(data: Path) -> dict[str, list[Book]]:
    return {"upbit": read_books_jsonl(data / "books" / "2025-08-24_upbit_krw-btc_20lvl.jsonl"),
            "binance": read_books_jsonl(data / "books" / "2025-08-24_binance_btcusdt_20lvl.jsonl")}


@pytest.mark.parametrize("venue", ["upbit", "binance"])
def test_model_book_reproduces_real_spread_and_depth(data: Path, real: dict, venue: str) -> None:
    model = fitted_depth_model(data)
    shape = model.venues[venue]
    bars = read_candles_csv(data / "btc" / f"{venue}_{'krw-btc' if venue == 'upbit' else 'btcusdt'}_5m.csv")
    assert shape.reference_volume == median(b.volume for b in bars)  # V_ref: median 5-minute bar volume
    books = real[venue]
    mid = median(b.mid for b in books)
    made = model.book_for(venue, "BTC", 0, mid, shape.reference_volume).validate()
    real_spread = median(b.best_ask - b.best_bid for b in books)
    tick = 1000.0 if venue == "upbit" else 0.01
    assert abs((made.best_ask - made.best_bid) - real_spread) <= 2 * tick
    assert len(made.bids) == len(made.asks) == 20
    assert all(abs(p / tick - round(p / tick)) < 1e-6 for p, _ in made.bids + made.asks)  # on the tick
    # the 20th level sits as far from mid as in the real books (within 10% or two ticks)
    real_far = median(b.mid - b.bids[-1][0] for b in books)
    assert abs((made.mid - made.bids[-1][0]) - real_far) <= max(0.1 * real_far, 2 * tick)
    real_depth = median(sum(q for _, q in b.asks) for b in books)
    made_depth = sum(q for _, q in made.asks)
    assert 0.2 * real_depth < made_depth < 2 * real_depth  # sum of per-level medians vs median of sums


def test_depth_scales_with_bar_volume(data: Path) -> None:
    model = fitted_depth_model(data)
    ref = model.venues["upbit"].reference_volume
    one = model.book_for("upbit", "BTC", 1, 150_000_000.0, ref)
    two = model.book_for("upbit", "BTC", 1, 150_000_000.0, 2 * ref)
    assert [p for p, _ in one.bids] == [p for p, _ in two.bids]
    assert [q2 / q1 for (_, q1), (_, q2) in zip(one.asks, two.asks)] == pytest.approx([2.0] * 20)


def test_upbit_tick_table_applies_at_low_prices(data: Path) -> None:
    book = fitted_depth_model(data).book_for("upbit", "XRP", 1, 4_163.4, 1.0).validate()
    assert book.best_bid == 4163.0 and book.best_ask == 4164.0  # 1 KRW ticks between 1,000 and 10,000
    assert [p for p, _ in book.bids[:3]] == [4163.0, 4162.0, 4161.0]


def test_bad_inputs_are_refused(real: dict) -> None:
    with pytest.raises(ValueError, match="several venues"):
        fit_venue_depth(real["upbit"] + real["binance"], 1.0)
    with pytest.raises(ValueError, match="reference_volume"):
        fit_venue_depth(real["upbit"], 0.0)
    with pytest.raises(ValueError, match="no books"):
        fit_venue_depth([], 1.0)
    model = DepthModel({"upbit": fit_venue_depth(real["upbit"], 2.0)})
    with pytest.raises(KeyError, match="no fit for venue 'binance'"):
        model.book_for("binance", "BTC", 0, 100.0, 1.0)
    with pytest.raises(ValueError, match="price -1"):
        model.book_for("upbit", "BTC", 0, -1.0, 1.0)
