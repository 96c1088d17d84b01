"""SYNTHETIC Top-N L2 books (Upbit KRW, Binance USDT, and the Upbit KRW-USDT FX book) for load tests.

Calibrated at run time on the recorded data (marketdata.calibration): spread and depth profile from
the real 20-level BTC books, price volatility from Binance 5-minute returns, and per coin an
independent Ornstein-Uhlenbeck ratio upbit_mid / binance_mid with the mean, std and half-life fitted
on upbit_close / binance_close. The FX book sits at the fitted mean ratio, so a coin's premium is
ratio / mean - 1. Assumptions the data cannot settle: every coin has BTC's volatility, coins are
independent, notional depth decays with rank (synthetic_universe). Every file written says
synthetic: true; never report strategy PnL on it as a market result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from domain.book import Book
from domain.venues import UPBIT_KRW_TICKS
from marketdata.calibration import Calibration, calibration
from marketdata.parquet_books import BookColumns, BookWriter
from marketdata.synthetic_universe import SYNTHETIC, binance_tick, universe

__all__ = ["SYNTHETIC", "SyntheticConfig", "SyntheticMarket"]

VENUES = ("upbit", "binance")
FX_DEPTH_RANK = 2  # the KRW-USDT book is about as deep as the second-largest coin's
_FLOORS = np.array([f for f, _ in UPBIT_KRW_TICKS][::-1])
_TICKS = np.array([t for _, t in UPBIT_KRW_TICKS][::-1])


def upbit_ticks(price: np.ndarray) -> np.ndarray:
    """Vectorised Upbit KRW price unit at each price."""
    return _TICKS[np.clip(np.searchsorted(_FLOORS, price, side="right") - 1, 0, len(_TICKS) - 1)]


def _ladder(raw: np.ndarray, tick: np.ndarray, step: np.ndarray | None, sign: int) -> np.ndarray:
    """(levels, rows) prices on their ticks; two levels on one tick push the outer one a step further
    out, the step being `step` or (None) the tick of the level before it."""
    px = (np.floor(raw / tick + 1e-9) if sign < 0 else np.ceil(raw / tick - 1e-9)) * tick
    for i in range(1, len(px)):
        prev = px[i - 1]
        s = upbit_ticks(prev) if step is None else step
        px[i] = np.minimum(px[i], prev - s) if sign < 0 else np.maximum(px[i], prev + s)
    return px


@dataclass(frozen=True, slots=True)
class SyntheticConfig:
    """What to generate; the same config (seed included) always gives the same books."""

    coins: int = 20
    days: float = 1.0
    cadence_ms: int = 1000           # one book per coin per venue per step
    seed: int = 0
    levels: int = 20
    rows_per_chunk: int = 50_000     # bounds memory: one chunk of (rows, levels) arrays at a time
    start_ms: int = 1_756_000_000_000

    def __post_init__(self) -> None:
        if not (1 <= self.coins <= 100 and self.days > 0 and self.cadence_ms > 0 and 1 <= self.levels
                and self.rows_per_chunk > 0):
            raise ValueError(f"bad synthetic config {self}: coins 1..100, days > 0, cadence_ms > 0, levels >= 1")

    @property
    def steps(self) -> int:
        return int(self.days * 86_400_000 // self.cadence_ms)

    @property
    def steps_per_chunk(self) -> int:
        return max(1, self.rows_per_chunk // (2 * self.coins + 1))


class SyntheticMarket:
    """Streams synthetic books chunk by chunk as BookColumns, Books, or a Parquet file."""

    synthetic = SYNTHETIC

    def __init__(self, config: SyntheticConfig, cal: Calibration | None = None) -> None:
        self.config = config
        self.cal = cal or calibration()
        self.coins, self.price_usdt, self.depth_scale = universe(config.coins, config.seed)
        if config.levels > self.cal.depth.venues["upbit"].levels:
            raise ValueError(f"levels {config.levels}: the calibration books have "
                             f"{self.cal.depth.venues['upbit'].levels}")
        self.symbols = (*self.coins, "USDT")
        self._fx_mid = self.cal.ratio.mean

    @property
    def source(self) -> str:
        c = self.config
        return (f"SYNTHETIC top{c.coins} seed={c.seed} days={c.days} cadence_ms={c.cadence_ms} "
                f"levels={c.levels}, calibrated on the recorded data in shared/data")

    def _base_qty(self, venue: str, side: str, rank_scale: np.ndarray, price_quote: np.ndarray,
                  btc_price_quote: float) -> np.ndarray:
        """(rows, L) median quantity in coin units: BTC's real profile at the same notional, scaled by rank."""
        shape = self.cal.depth.venues[venue]
        btc_qty = np.array(getattr(shape, f"{side}_qty_rel")[: self.config.levels]) * shape.reference_volume
        return btc_qty[None, :] * (rank_scale * btc_price_quote / price_quote)[:, None]

    def _prices(self, venue: str, mid: np.ndarray, tick: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(bids, asks) on the tick, strictly best-first; tick None means Upbit's KRW table."""
        shape = self.cal.depth.venues[venue]
        out = []
        for sign, offsets in ((-1, shape.bid_offsets_bps), (1, shape.ask_offsets_bps)):
            # level-major (levels, rows): the outward pass below walks contiguous rows
            raw = (1 + sign * np.array(offsets[: self.config.levels]) / 1e4)[:, None] * mid[None, :]
            if tick is not None:
                px = _ladder(raw, np.broadcast_to(tick[None, :], raw.shape), tick, sign)
            else:
                t = upbit_ticks(raw)
                px = _ladder(raw, t, t[0], sign)   # most ladders sit in one band of the price table
                home = np.searchsorted(_FLOORS, raw[0], side="right")
                off = np.flatnonzero((np.searchsorted(_FLOORS, px[:-1], side="right") != home).any(axis=0))
                if off.size:   # a level left the band: redo those rows with each level's own tick
                    px[:, off] = _ladder(raw[:, off], t[:, off], None, sign)
            out.append(np.round(px.T, 10))
        return out[0], out[1]

    def column_chunks(self) -> Iterator[BookColumns]:
        """Every book of the run, in time order, as chunks of about rows_per_chunk rows."""
        c, cal = self.config, self.cal
        n, dt = c.coins, c.cadence_ms / 1000
        rng = np.random.default_rng([c.seed, 0])
        log_px = np.log(self.price_usdt)
        mu, std = cal.ratio.mean, cal.ratio.std
        a = math.exp(-math.log(2) * dt / cal.ratio.half_life_s)
        ratio = mu + std * rng.standard_normal(n)
        btc_krw = cal.reference_price_usdt * mu
        bn_tick = binance_tick(self.price_usdt)
        fx_scale = np.array([FX_DEPTH_RANK ** -0.8])
        base = {(v, s): self._base_qty(v, s, np.concatenate([self.depth_scale, fx_scale]) if v == "upbit"
                                       else self.depth_scale,
                                       np.concatenate([self.price_usdt * mu, [mu]]) if v == "upbit" else self.price_usdt,
                                       btc_krw if v == "upbit" else cal.reference_price_usdt)
                for v in VENUES for s in ("bid", "ask")}
        for chunk, step0 in enumerate(range(0, c.steps, c.steps_per_chunk)):
            steps = min(c.steps_per_chunk, c.steps - step0)
            crng = np.random.default_rng([c.seed, 1, chunk])
            log_px_path = log_px + np.cumsum(cal.vol_per_s * math.sqrt(dt) * crng.standard_normal((steps, n)), axis=0)
            log_px = log_px_path[-1]
            shocks = std * math.sqrt(1 - a * a) * crng.standard_normal((steps, n))
            ratios = np.empty((steps, n))
            for s in range(steps):
                ratio = mu + a * (ratio - mu) + shocks[s]
                ratios[s] = ratio
            bn_mid = np.exp(log_px_path)
            yield self._chunk(crng, step0, steps, bn_mid, bn_mid * ratios, bn_tick, base)

    def _chunk(self, rng: np.random.Generator, step0: int, steps: int, bn_mid: np.ndarray, up_mid: np.ndarray,
               bn_tick: np.ndarray, base: dict) -> BookColumns:
        c, n = self.config, self.config.coins
        up_mid_fx = np.concatenate([up_mid, np.full((steps, 1), self._fx_mid)], axis=1).ravel()
        up_bid, up_ask = self._prices("upbit", up_mid_fx, None)
        bn_bid, bn_ask = self._prices("binance", bn_mid.ravel(), np.tile(bn_tick, steps))
        noise = lambda rows: np.exp(self.cal.qty_log_std * rng.standard_normal((rows, c.levels)))  # noqa: E731
        rows_up, rows_bn = steps * (n + 1), steps * n
        up_bq = np.tile(base["upbit", "bid"], (steps, 1)) * noise(rows_up)
        up_aq = np.tile(base["upbit", "ask"], (steps, 1)) * noise(rows_up)
        bn_bq = np.tile(base["binance", "bid"], (steps, 1)) * noise(rows_bn)
        bn_aq = np.tile(base["binance", "ask"], (steps, 1)) * noise(rows_bn)
        step_ts = c.start_ms + (step0 + np.arange(steps, dtype=np.int64)) * c.cadence_ms
        ts = np.concatenate([np.repeat(step_ts, n + 1), np.repeat(step_ts, n)])
        ts = ts + rng.integers(0, c.cadence_ms, len(ts))  # books arrive spread over the step
        order = np.argsort(ts, kind="stable")
        venue = np.concatenate([np.zeros(rows_up, np.int32), np.ones(rows_bn, np.int32)])
        symbol = np.concatenate([np.tile(np.arange(n + 1, dtype=np.int32), steps),
                                 np.tile(np.arange(n, dtype=np.int32), steps)])
        return BookColumns(ts[order], venue[order], symbol[order], VENUES, self.symbols,
                           np.concatenate([up_bid, bn_bid])[order], np.concatenate([up_bq, bn_bq])[order],
                           np.concatenate([up_ask, bn_ask])[order], np.concatenate([up_aq, bn_aq])[order])

    def books(self) -> Iterator[Book]:
        """The same stream as domain Books (slower; for the exchange simulator and small runs)."""
        for cols in self.column_chunks():
            yield from cols.books()

    def write(self, path: str | Path, rows_per_group: int = 100_000) -> int:
        """Stream the run to a Parquet books file marked synthetic; returns rows written."""
        with BookWriter(path, source=self.source, synthetic=True, rows_per_group=rows_per_group,
                        symbols=self.coins) as writer:
            for cols in self.column_chunks():
                writer.append_columns(cols)
            return writer.rows_written
