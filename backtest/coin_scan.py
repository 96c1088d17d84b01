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
from domain.strategy import RollingWindow, SymbolStrategy
from domain.symbols import FX_SYMBOL

FX_KEY = ("upbit", FX_SYMBOL)


@dataclass
class CoinScan:
    """One coin over one chunk; touch arrays are aligned (touch k is instant inst[k])."""

    symbol: str
    inst: np.ndarray           # instant ids of the touches, ascending
    live: np.ndarray           # bool: the rules decide here (books present, fresh, two-sided; rate known)
    evaluations: int           # touches the engine counts as evaluations (books and rate present)
    up: np.ndarray             # index (ChunkIndex 1-D columns) of the Upbit book at each touch
    bn: np.ndarray             # same for the Binance book the strategy trades against
    fx_bid: np.ndarray         # the USDT/KRW quote at each touch
    fx_ask: np.ndarray
    seg: np.ndarray            # samples of this chunk taken before each touch
    sample_at: np.ndarray      # touches where a sample is taken
    samples: list[float]       # their mid premiums
    baselines: list[float]     # the baseline after 0, 1, ... samples (the exit screen's reference)
    entry: np.ndarray          # touches where an entry may pass
    entry_ts: np.ndarray       # their times (for the cooldown)
    window: RollingWindow      # the window after this chunk's samples
    next_sample_ms: int        # the strategy's next_sample_ms after them


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
    window = strat.window.copy()
    limits = [strat.entry_bounds(window)]
    baselines = [strat.baseline(window)]
    for v in values:
        window.push(v)
        limits.append(strat.entry_bounds(window))
        baselines.append(strat.baseline(window))
    mask = np.zeros(len(inst), dtype=np.int64)
    mask[sample_at] = 1
    seg = np.cumsum(mask) - mask
    hi = np.array([np.inf if b is None else b[0] for b in limits])[seg]
    lo = np.array([-np.inf if b is None else b[1] for b in limits])[seg]
    with np.errstate(invalid="ignore", divide="ignore"):
        entry = np.flatnonzero(live & ((ub / (ba * fxa) >= hi) | (ua / (bb * fxb) <= lo)))
    if len(sample_at):
        last = int(now[sample_at[-1]])
        next_sample = last - last % p.z_sample_ms + p.z_sample_ms
    else:
        next_sample = strat.next_sample_ms
    return CoinScan(sym, inst, live, int(np.count_nonzero(valid)), up, bn, fxb, fxa, seg, sample_at, values,
                    baselines, entry, now[entry], window, next_sample)


def exit_candidates(scan: CoinScan, index: ChunkIndex, strat: SymbolStrategy, k0: int) -> np.ndarray:
    """Touches from k0 on where the open position's exit may fire: the time limit is reached, or the
    exit premium, bounded between the best levels and the deepest level its size needs, reaches a
    stop-loss, take-profit or reversal limit (SymbolStrategy.exit_bounds)."""
    pos = strat.position
    sl = slice(k0, None)
    up, bn = scan.up[sl], scan.bn[sl]
    if pos.direction is Direction.RICH:   # exit buys on Upbit, sells on Binance at the bid rate
        up_side, bn_side, fx = "ask", "bid", scan.fx_bid[sl]
    else:
        up_side, bn_side, fx = "bid", "ask", scan.fx_ask[sl]
    up_best = (index.ask if up_side == "ask" else index.bid)[up]
    bn_best = (index.ask if bn_side == "ask" else index.bid)[bn]
    with np.errstate(invalid="ignore", divide="ignore"):
        best = up_best / (bn_best * fx) - 1.0
        deep = _deepest(index, up, up_side, pos.qty) / (_deepest(index, bn, bn_side, pos.qty) * fx) - 1.0
    p_low, p_high = (best, deep) if pos.direction is Direction.RICH else (deep, best)
    seg = scan.seg[sl]
    first = int(seg[0]) if len(seg) else 0
    limits = [strat.exit_bounds(b) for b in scan.baselines[first:]]
    low = np.array([lim[0] for lim in limits])[seg - first]
    high = np.array([lim[1] for lim in limits])[seg - first]
    now = index.inst_ts[scan.inst[sl]]
    fire = scan.live[sl] & ((p_low <= low) | (p_high >= high) | (now >= strat.exit_due_ms()))
    return k0 + np.flatnonzero(fire)


def _deepest(index: ChunkIndex, idx: np.ndarray, side: str, qty: float) -> np.ndarray:
    """Price of a level at least as deep as the last one a walk of `qty` touches (the last level
    shown when the depth runs out): one level past where the cumulative size reaches `qty`, so
    rounding in the walk's running remainder cannot put it deeper."""
    if not len(idx):
        return np.zeros(0)
    px, size = index.levels(idx, side)
    reach = (np.cumsum(size, axis=1) < qty).sum(axis=1) + 1
    shown = (~np.isnan(px)).sum(axis=1)
    level = np.clip(np.minimum(reach, shown - 1), 0, px.shape[1] - 1)
    return px[np.arange(len(idx)), level]
