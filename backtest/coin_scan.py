"""What the exact rules could do for one coin over one chunk, worked out with numpy.

Everything here follows from the data and the coin's z-score sampling alone (never from fills or
guards), so a scan can run ahead of the engine, or in another process:
- the coin's touches: instants where the engine would evaluate it (a book of the coin, or of
  KRW-USDT when the rate comes from that book), whether it would count an evaluation there
  (both books and the rate present) and whether the rules decide there (books fresh and two-sided);
- the z-score samples: the first deciding touch in each z_sample_ms bucket, their mid premiums,
  and the window's statistics after each, hence the entry limits of every stretch between samples;
- entry candidates: touches where the top-of-book premium reaches those limits. A depth walk never
  beats the best level, so no entry can pass anywhere else.
`exit_candidates` does the same for an open position, which the engine's state decides.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backtest.chunk_index import ChunkIndex
from domain.orders import Direction
from domain.strategy import SymbolStrategy
from domain.symbols import FX_SYMBOL

FX_KEY = ("upbit", FX_SYMBOL)
# The screens work from window statistics summed in floats (the engine's exact ones are fsum-based):
# their error is below 1e-15 for premiums of any plausible size, so widening every limit by this
# much keeps the screens conservative (exit limits already carry 2 * SCREEN_MARGIN = 2e-9).
STATS_SLACK = 1e-9


@dataclass
class CoinScan:
    """One coin over one chunk; touch arrays are aligned (touch k is instant inst[k]).

    Only what the engine's driver needs, kept small: a scan may come from another process.
    """

    symbol: str
    inst: np.ndarray           # instant ids of the touches, ascending
    live: np.ndarray           # bool: the rules decide here (books present, fresh, two-sided; rate known)
    evaluations: int           # touches the engine counts as evaluations (books and rate present)
    sample_at: np.ndarray      # touches where a sample is taken
    samples: list[float]       # their mid premiums
    baselines: list[float]     # the baseline after 0, 1, ... samples, to within STATS_SLACK (exit screen)
    entry: np.ndarray          # touches where an entry may pass
    entry_ts: np.ndarray       # their times (for the cooldown)
    next_sample_ms: int        # the strategy's next_sample_ms after them

    def samples_before(self, touches):
        """Samples of this chunk taken before each touch (the window a decision there compares with)."""
        return np.searchsorted(self.sample_at, touches)


def fixed_rate(fx_params) -> float | None:
    """The USDT/KRW rate when the profile fixes it; None when it comes from the KRW-USDT book."""
    return fx_params.fixed_usdt_krw if fx_params.source == "fixed" else None


def scan_coin(index: ChunkIndex, strat: SymbolStrategy, bn_venue: str, fixed_rate: float | None) -> CoinScan:
    """Scan `strat`'s coin over the chunk, starting from the strategy's sampling state (not changed)."""
    sym, p = strat.symbol, strat.p
    # every KRW-USDT book makes every coin evaluate when the rate comes from that book (Engine.on_book)
    inst = index.touches(sym, FX_SYMBOL if fixed_rate is None else None)
    end = index.inst_end[inst]
    now = index.inst_ts[inst]
    up = index.latest(("upbit", sym), end)
    bn = index.latest((bn_venue, sym), end)
    if fixed_rate is None:
        bid, ask, known = index.rate(FX_KEY)
        fxb, fxa, rate_ok = bid[inst], ask[inst], known[inst]
    else:
        fxb = fxa = np.full(len(inst), fixed_rate)
        rate_ok = True
    valid = index.exists[up] & index.exists[bn] & rate_ok
    ub, ua, bb, ba = index.bid[up], index.ask[up], index.bid[bn], index.ask[bn]
    age = p.max_book_age_ms
    live = (valid & (now - index.ts[up] <= age) & (now - index.ts[bn] <= age)
            & ~np.isnan(ub) & ~np.isnan(ua) & ~np.isnan(bb) & ~np.isnan(ba))
    # samples: the first deciding touch at or after next_sample_ms, then the first in each later bucket
    deciding = np.flatnonzero(live)
    due = deciding[now[deciding] >= strat.next_sample_ms]
    bucket = now[due] // p.z_sample_ms
    sample_at = due[np.concatenate([[True], bucket[1:] != bucket[:-1]])] if len(due) else due
    with np.errstate(invalid="ignore", divide="ignore"):
        s = sample_at   # Book.mid and FxQuote.mid, then mid_premium, in the same float operations
        values = (((ub[s] + ua[s]) / 2) / (((bb[s] + ba[s]) / 2) * ((fxb[s] + fxa[s]) / 2)) - 1.0).tolist()
    means, stds, counts = window_stats(strat.window.values, values, p.z_window)
    baselines, hi, lo = [], [], []
    for mean, std, n in zip(means.tolist(), stds.tolist(), counts.tolist()):
        baseline, limits = strat.screen_limits(mean, std, n, slack=STATS_SLACK)
        baselines.append(baseline)
        hi.append(np.inf if limits is None else limits[0])
        lo.append(-np.inf if limits is None else limits[1])
    seg = np.searchsorted(sample_at, np.arange(len(inst)))   # samples before each touch
    hi, lo = np.array(hi)[seg], np.array(lo)[seg]
    with np.errstate(invalid="ignore", divide="ignore"):
        entry = np.flatnonzero(live & ((ub / (ba * fxa) >= hi) | (ua / (bb * fxb) <= lo)))
    if len(sample_at):
        last = int(now[sample_at[-1]])
        next_sample = last - last % p.z_sample_ms + p.z_sample_ms
    else:
        next_sample = strat.next_sample_ms
    return CoinScan(sym, inst, live, int(np.count_nonzero(valid)), sample_at, values, baselines, entry, now[entry],
                    next_sample)


def exit_candidates(scan: CoinScan, index: ChunkIndex, strat: SymbolStrategy, bn_venue: str,
                    fixed_rate: float | None, k0: int) -> np.ndarray:
    """Touches from k0 on where the open position's exit may fire: the time limit is reached, or the
    exit premium, bounded between the best levels and the deepest level its size needs, reaches a
    stop-loss, take-profit or reversal limit (SymbolStrategy.exit_bounds)."""
    pos, sym = strat.position, strat.symbol
    inst = scan.inst[k0:]
    end = index.inst_end[inst]
    up, bn = index.latest(("upbit", sym), end), index.latest((bn_venue, sym), end)
    rich = pos.direction is Direction.RICH   # a RICH exit buys on Upbit, sells on Binance at the bid rate
    if fixed_rate is None:
        bid, ask, _ = index.rate(FX_KEY)
        fx = (bid if rich else ask)[inst]
    else:
        fx = np.full(len(inst), fixed_rate)
    up_side, bn_side = ("ask", "bid") if rich else ("bid", "ask")
    up_best = (index.ask if rich else index.bid)[up]
    bn_best = (index.bid if rich else index.ask)[bn]
    with np.errstate(invalid="ignore", divide="ignore"):
        best = up_best / (bn_best * fx) - 1.0
        deep = _deepest(index, up, up_side, pos.qty) / (_deepest(index, bn, bn_side, pos.qty) * fx) - 1.0
    p_low, p_high = (best, deep) if rich else (deep, best)
    seg = scan.samples_before(np.arange(k0, len(scan.inst)))
    first = int(seg[0]) if len(seg) else 0
    limits = [strat.exit_bounds(b) for b in scan.baselines[first:]]
    low = np.array([lim[0] for lim in limits])[seg - first]
    high = np.array([lim[1] for lim in limits])[seg - first]
    now = index.inst_ts[inst]
    fire = scan.live[k0:] & ((p_low <= low) | (p_high >= high) | (now >= strat.exit_due_ms()))
    return k0 + np.flatnonzero(fire)


def window_stats(held, samples: list[float], size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, std, count) of the rolling window after 0, 1, ... len(samples) more samples.

    Sums are taken relative to the first value, so cancellation stays far below STATS_SLACK.
    """
    values = np.concatenate([np.asarray(held, dtype=np.float64), np.asarray(samples, dtype=np.float64)])
    ends = np.arange(len(held), len(values) + 1)
    starts = np.maximum(ends - size, 0)
    counts = ends - starts
    if not len(values):
        return np.zeros(1), np.zeros(1), counts
    d = values - values[0]
    c1 = np.concatenate([[0.0], np.cumsum(d)])
    c2 = np.concatenate([[0.0], np.cumsum(d * d)])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_d = (c1[ends] - c1[starts]) / counts
        var = np.maximum((c2[ends] - c2[starts]) / counts - mean_d * mean_d, 0.0)
    mean = np.where(counts > 0, values[0] + mean_d, 0.0)
    std = np.where(counts > 1, np.sqrt(var), 0.0)
    return mean, std, counts


def _deepest(index: ChunkIndex, idx: np.ndarray, side: str, qty: float) -> np.ndarray:
    """Price of a level at least as deep as the last one a walk of `qty` touches (the last level
    shown when the depth runs out): the first whose cumulative size clears `qty` by a relative 1e-12,
    so rounding in the walk's running remainder cannot have taken it deeper."""
    if not len(idx):
        return np.zeros(0)
    px, size = index.levels(idx, side)
    reach = (np.cumsum(size, axis=1) < qty * (1 + 1e-12)).sum(axis=1)
    shown = (~np.isnan(px)).sum(axis=1)
    level = np.clip(np.minimum(reach, shown - 1), 0, px.shape[1] - 1)
    return px[np.arange(len(idx)), level]
