"""Synthetic Top-N generator: deterministic, calibrated like the real data, valid books, labelled synthetic."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from marketdata.calibration import calibration
from marketdata.parquet_books import file_info, read_book_columns
from marketdata.synthetic import SYNTHETIC, SyntheticConfig, SyntheticMarket, upbit_ticks


@pytest.fixture(scope="module")
def cal(data: Path):
    return calibration(data)


def _mids_by_step(market: SyntheticMarket) -> dict[str, np.ndarray]:
    """(steps, coins) mid prices per venue, rebuilt from the jittered event stream."""
    c = market.config
    out = {v: np.full((c.steps, c.coins), np.nan) for v in ("upbit", "binance")}
    for cols in market.column_chunks():
        step = (cols.ts_ms - c.start_ms) // c.cadence_ms
        mid = (cols.bid_px[:, 0] + cols.ask_px[:, 0]) / 2
        for code, venue in enumerate(cols.venues):
            rows = (cols.venue_code == code) & (cols.symbol_code < c.coins)
            out[venue][step[rows], cols.symbol_code[rows]] = mid[rows]
    return out


def test_deterministic_for_a_seed(cal) -> None:
    config = SyntheticConfig(coins=5, days=0.01, seed=3, rows_per_chunk=2000)
    a, b = SyntheticMarket(config, cal), SyntheticMarket(config, cal)
    for x, y in zip(a.column_chunks(), b.column_chunks()):
        assert np.array_equal(x.ts_ms, y.ts_ms) and np.array_equal(x.ask_px, y.ask_px, equal_nan=True)
        assert np.array_equal(x.bid_qty, y.bid_qty)
    other = next(SyntheticMarket(SyntheticConfig(coins=5, days=0.01, seed=4, rows_per_chunk=2000), cal)
                 .column_chunks())
    assert not np.array_equal(next(a.column_chunks()).bid_px, other.bid_px)


def test_event_count_order_and_valid_books(cal) -> None:
    market = SyntheticMarket(SyntheticConfig(coins=30, days=0.002, rows_per_chunk=5000), cal)
    chunks = list(market.column_chunks())
    assert sum(len(c) for c in chunks) == market.config.steps * (2 * 30 + 1)
    ts = np.concatenate([c.ts_ms for c in chunks])
    assert np.all(np.diff(ts) >= 0)
    for book in chunks[0].books():
        book.validate()  # sorted best-first, positive, uncrossed
        if book.venue == "upbit":  # every Upbit price on the KRW price table
            px = np.array([p for p, _ in book.bids + book.asks])
            assert np.allclose(np.round(px / upbit_ticks(px)) * upbit_ticks(px), px, rtol=0, atol=1e-9)
    fx = [b for b in chunks[0].books() if b.symbol == "USDT"]
    assert fx and all(b.venue == "upbit" and abs(b.mid / cal.ratio.mean - 1) < 1e-3 for b in fx)


def test_calibration_figures_are_reproduced(cal) -> None:
    market = SyntheticMarket(SyntheticConfig(coins=20, days=60, cadence_ms=300_000, levels=2, seed=1), cal)
    mids = _mids_by_step(market)
    assert not np.isnan(mids["upbit"]).any() and not np.isnan(mids["binance"]).any()
    # Coins whose Upbit tick is coarse (SHIB, PEPE: ~0.5% of price) quote the ratio with tick noise
    # as large as its 5-minute moves; measure the process on coins with ticks under 10 bps.
    upbit_px = market.price_usdt * cal.ratio.mean
    fine = upbit_ticks(upbit_px) / upbit_px < 1e-3
    assert fine.sum() >= 10
    ratio = (mids["upbit"] / mids["binance"])[:, fine]
    assert ratio.mean() == pytest.approx(cal.ratio.mean, abs=0.5 * cal.ratio.std)
    assert ratio.std() == pytest.approx(cal.ratio.std, rel=0.2)
    dev = ratio - cal.ratio.mean
    phi = float(np.sum(dev[:-1] * dev[1:]) / np.sum(dev[:-1] ** 2))
    half_life = 300 * math.log(0.5) / math.log(phi)
    assert half_life == pytest.approx(cal.ratio.half_life_s, rel=0.3)
    returns = np.diff(np.log(mids["binance"]), axis=0)
    assert returns.std() / math.sqrt(300) == pytest.approx(cal.vol_per_s, rel=0.05)


def test_binance_btc_spread_matches_the_real_books(cal) -> None:
    [cols] = list(SyntheticMarket(SyntheticConfig(coins=1, days=0.01), cal).column_chunks())
    btc = (cols.venue_code == cols.venues.index("binance")) & (cols.symbol_code == 0)
    half_bps = np.median((cols.ask_px[btc, 0] - cols.bid_px[btc, 0]) / 2 / cols.bid_px[btc, 0] * 1e4)
    tick_bps = 0.01 / cols.bid_px[btc, 0].mean() * 1e4
    assert abs(half_bps - cal.depth.venues["binance"].half_spread_bps) <= tick_bps


def test_parquet_file_says_synthetic_and_round_trips(cal, tmp_path: Path) -> None:
    market = SyntheticMarket(SyntheticConfig(coins=4, days=0.005, rows_per_chunk=1000), cal)
    out = tmp_path / "syn.parquet"
    rows = market.write(out, rows_per_group=2000)
    info = file_info(out)
    assert SYNTHETIC is True and market.synthetic is True
    assert info.synthetic is True and "SYNTHETIC top4" in info.source and info.rows == rows
    written = list(market.column_chunks())
    read = list(read_book_columns(out))
    assert sum(len(c) for c in read) == rows == sum(len(c) for c in written)
    assert np.array_equal(np.concatenate([c.ask_px for c in read]), np.concatenate([c.ask_px for c in written]))
    assert [b for b in read[0].books()][:5] == [b for b in written[0].books()][:5]


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="coins 1..100"):
        SyntheticConfig(coins=101)
