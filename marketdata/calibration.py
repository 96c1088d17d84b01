"""Calibration figures computed at run time from the recorded files (cached in memory per data dir).

Depth: domain.depth_model fitted on the 2025-08-24 20-level books, V_ref = median 5-minute bar volume.
Premium: mean, std and half-life of the ratio upbit_close / binance_close on the shared 5-minute
bars (that ratio is USDT/KRW times 1 + premium; there is no separate FX series in the data).
Volatility: std of Binance 5-minute log returns, scaled to one second (sqrt-time).
Cadence: median interval between snapshots of the Upbit KRW-ETH 5-level book.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from config.paths import data_dir
from domain.depth_model import DepthModel, fit_venue_depth
from marketdata.importers import read_books_jsonl, read_candles_csv, read_upbit_kst_csv

UPBIT_5M = "btc/upbit_krw-btc_5m.csv"
BINANCE_5M = "btc/binance_btcusdt_5m.csv"
UPBIT_20LVL = "books/2025-08-24_upbit_krw-btc_20lvl.jsonl"
BINANCE_20LVL = "books/2025-08-24_binance_btcusdt_20lvl.jsonl"
UPBIT_KST = "books/2024-04-27_upbit_krw-eth_5lvl_kst.csv"


@dataclass(frozen=True, slots=True)
class RatioFit:
    """Mean-reverting (AR(1) / Ornstein-Uhlenbeck) fit of upbit_close / binance_close."""

    mean: float
    std: float
    half_life_s: float
    samples: int
    pairs: int  # consecutive 5-minute pairs the AR(1) coefficient was fitted on


@dataclass(frozen=True, slots=True)
class Calibration:
    """Everything the synthetic generator and candle backtests take from the real data."""

    depth: DepthModel
    ratio: RatioFit
    vol_per_s: float              # std of Binance BTC log return per second
    upbit_snapshot_interval_s: float
    qty_log_std: float            # dispersion of level quantities around the fitted profile (log units)
    reference_price_usdt: float   # Binance BTC mid in the 20-level books (scales notional depth)


def fit_ratio(upbit_ts: np.ndarray, upbit_close: np.ndarray, binance_ts: np.ndarray, binance_close: np.ndarray,
              interval_s: int) -> RatioFit:
    """Align bars on open time, then mean, std and AR(1) half-life over consecutive aligned bars."""
    common, iu, ib = np.intersect1d(upbit_ts, binance_ts, return_indices=True)
    if len(common) < 10:
        raise ValueError(f"only {len(common)} aligned bars: cannot fit the premium process")
    ratio = upbit_close[iu] / binance_close[ib]
    dev = ratio - ratio.mean()
    consecutive = np.diff(common) == interval_s * 1000
    x, y = dev[:-1][consecutive], dev[1:][consecutive]
    phi = float(np.dot(x, y) / np.dot(x, x))
    if not 0 < phi < 1:
        raise ValueError(f"AR(1) coefficient {phi:.4f} is not mean-reverting")
    return RatioFit(float(ratio.mean()), float(ratio.std()), interval_s * math.log(0.5) / math.log(phi),
                    len(ratio), int(consecutive.sum()))


def _qty_log_std(books, model_side: tuple[float, ...], ref: float) -> float:
    logs = [math.log(q / (rel * ref)) for b in books for (_, q), rel in zip(b.bids, model_side) if q > 0]
    return float(np.std(logs))


@lru_cache(maxsize=4)
def _calibrate(root: Path) -> Calibration:
    up5 = read_candles_csv(root / UPBIT_5M)
    bn5 = read_candles_csv(root / BINANCE_5M)
    ref = {"upbit": float(np.median([c.volume for c in up5])), "binance": float(np.median([c.volume for c in bn5]))}
    up_books = read_books_jsonl(root / UPBIT_20LVL)
    bn_books = read_books_jsonl(root / BINANCE_20LVL)
    depth = DepthModel({"upbit": fit_venue_depth(up_books, ref["upbit"]),
                        "binance": fit_venue_depth(bn_books, ref["binance"])})
    ratio = fit_ratio(np.array([c.ts_ms for c in up5]), np.array([c.close for c in up5]),
                      np.array([c.ts_ms for c in bn5]), np.array([c.close for c in bn5]), 300)
    bn_close = np.array([c.close for c in bn5])
    vol_5m = float(np.std(np.diff(np.log(bn_close))))
    kst_ts = np.array([b.ts_ms for b in read_upbit_kst_csv(root / UPBIT_KST)])
    qty_std = float(np.mean([_qty_log_std(up_books, depth.venues["upbit"].bid_qty_rel, ref["upbit"]),
                             _qty_log_std(bn_books, depth.venues["binance"].bid_qty_rel, ref["binance"])]))
    return Calibration(depth, ratio, vol_5m / math.sqrt(300), float(np.median(np.diff(kst_ts))) / 1000, qty_std,
                       float(np.mean([b.mid for b in bn_books])))


def calibration(root: Path | None = None) -> Calibration:
    """The calibration computed from the recorded files under `root` (default: config.paths.data_dir())."""
    return _calibrate(Path(root or data_dir()).resolve())


def fitted_depth_model(root: Path | None = None) -> DepthModel:
    """The DepthModel fitted on the real 20-level books (V_ref = median 5-minute bar volume)."""
    return calibration(root).depth
