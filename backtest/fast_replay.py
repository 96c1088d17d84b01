"""Replay column chunks through the engine, running the exact rules only where a decision can change.

The per-event path (Engine.on_book) builds a Book per row and evaluates every touched coin when
its instant closes; almost all of those evaluations provably change nothing. Here each chunk is
scanned per coin with numpy (backtest/coin_scan.py: touches, z-score samples, entry candidates),
and the engine is driven only through the instants where something can happen:
- a coin's entry candidate (flat, out of cooldown) or exit candidate (open position: the exit
  premium's bounds reach a limit, or the time limit is due);
- an order falling due, an equity mark, a funding time.
At such an instant the engine sees the books as they stood then (LazyBooks resolves each key to its
latest row at a cursor), its own fills first, then the candidates' exact rules. Everything else the
per-event path does at the other instants (counting evaluations, pushing z-score samples, tracing
the premium) is done in bulk. Orders, fills, round trips, decisions, premium trace, equity and KPIs
equal the per-event path's (tests/backtest/test_fast_replay.py holds it to that).
"""
from __future__ import annotations

import time
from bisect import bisect_left
from typing import Callable, Iterable

import numpy as np

from backtest.chunk_index import ChunkIndex, select, whole_instants
from backtest.coin_scan import CoinScan, exit_candidates, fixed_rate, scan_coin
from backtest.lazy_books import LazyBooks
from domain.engine import Engine
from domain.series import ThinnedSeries
from domain.symbols import FX_SYMBOL

__all__ = ["FastReplay", "LazyBooks", "LocalScans"]

LATENCY_SAMPLE_EVERY = 16  # time one exact instant in 16


class LocalScans:
    """Scans every coin of the engine in this process (ShardedScans hands some to a second one)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.rate = fixed_rate(engine.fx_params)

    def feed(self, cols) -> None:
        """The next chunk FastReplay will apply (a worker may start on it early); nothing to do here."""

    def scans(self, index: ChunkIndex) -> dict[str, CoinScan]:
        eng = self.engine
        return {s: scan_coin(index, strat, eng.bn_venue, self.rate) for s, strat in eng.strategies.items()}

    def after_chunk(self) -> None:
        """The engine has applied a chunk (a worker may be waiting for state it left behind)."""

    def close(self) -> None:
        pass


class _Coin:
    """A coin's place in the current chunk: its scan, its next exact instant, what is in sync."""

    __slots__ = ("sym", "strat", "scan", "inst", "sample_at", "times", "next_inst", "next_touch", "sig",
                 "exits", "exits_for", "pushed", "traced", "start_next", "start_last")

    def __init__(self, strat, scan: CoinScan, index: ChunkIndex):
        self.sym, self.strat, self.scan = strat.symbol, strat, scan
        self.inst = scan.inst
        self.sample_at = scan.sample_at.tolist()
        self.times = index.inst_ts[scan.inst[scan.sample_at]].tolist()
        self.exits, self.exits_for = None, None
        self.pushed = self.traced = 0          # samples of this chunk in strat.window / in the trace
        self.start_next, self.start_last = strat.next_sample_ms, strat.last_premium

    def refresh(self, index: ChunkIndex, from_inst: int, never: int, bn_venue: str, rate: float | None) -> None:
        """The first touch at or after `from_inst` where the exact rules must run, for the strategy's state now."""
        strat, scan = self.strat, self.scan
        self.sig = (strat.pending, strat.position, strat.cooldown_until_ms)
        k0 = int(np.searchsorted(self.inst, from_inst))
        touch = None
        if strat.pending:
            pass
        elif strat.position is not None:
            if self.exits_for is not strat.position:
                self.exits = exit_candidates(scan, index, strat, bn_venue, rate, k0)
                self.exits_for = strat.position
            i = int(np.searchsorted(self.exits, k0))
            touch = int(self.exits[i]) if i < len(self.exits) else None
        else:
            i = max(int(np.searchsorted(scan.entry, k0)), int(np.searchsorted(scan.entry_ts, strat.cooldown_until_ms)))
            touch = int(scan.entry[i]) if i < len(scan.entry) else None
        self.next_touch = touch
        self.next_inst = never if touch is None else int(self.inst[touch])

    def changed(self) -> bool:
        strat = self.strat
        return self.sig != (strat.pending, strat.position, strat.cooldown_until_ms)


class FastReplay:
    """Drives one Engine (built with books=LazyBooks()) from BookColumns chunks."""

    def __init__(self, engine: Engine, on_chunk: Callable[[int], None] | None = None, scans=None):
        if not isinstance(engine.books, LazyBooks):
            raise TypeError("FastReplay needs an Engine built with books=LazyBooks()")
        self.engine = engine
        self.on_chunk = on_chunk          # called with the rows applied after each chunk
        self.source = scans or LocalScans(engine)
        self.latencies: list[float] = []  # ms per exact instant, one in LATENCY_SAMPLE_EVERY
        self.first_ts: int | None = None
        self.exact_evaluations = 0        # evaluations run through the engine's exact rules
        self._carry: dict = {}
        self._exact_instants = 0
        self._wanted = set(engine.strategies) | {FX_SYMBOL}
        self.rate = fixed_rate(engine.fx_params)

    def run(self, chunks: Iterable) -> Engine:
        """Apply every chunk in order, then finish the engine (in-flight orders, last equity mark)."""
        try:
            self.consume(chunks)
        finally:
            self.source.close()
        self.engine.finish()
        return self.engine

    def consume(self, chunks: Iterable) -> None:
        """Apply chunks in order, re-cut to whole instants; callable again with the chunks that follow.

        Each chunk is announced to the scan source one step ahead, so a worker process scans it
        while the engine replays the one before."""
        ahead = None
        for cols in whole_instants(self._keep_wanted(c) for c in chunks):
            self.source.feed(cols)
            if ahead is not None:
                self.apply(ahead)
            ahead = cols
        if ahead is not None:
            self.apply(ahead)

    def apply(self, cols) -> None:
        """Apply one chunk of whole instants, rows in time order (run() re-cuts chunks that split one)."""
        cols = self._keep_wanted(cols)
        if cols is None:
            return
        self._check_order(cols)
        if self.first_ts is None:
            self.first_ts = int(cols.ts_ms[0])
        index = ChunkIndex(cols, self._carry)
        self.engine.books.show(index)
        scans = self.source.scans(index)
        coins = [_Coin(self.engine.strategies[s], scans[s], index) for s in self.engine.strategies]
        exact_before = self.exact_evaluations
        self._name_premium_series(coins)
        self._replay(index, coins)
        self._close_chunk(index, coins, scans, exact_before)
        self._carry = index.carry_after()
        self.source.after_chunk()
        if self.on_chunk is not None:
            self.on_chunk(index.n)

    # -- the exact instants ---------------------------------------------------------------------
    def _replay(self, index: ChunkIndex, coins: list[_Coin]) -> None:
        eng, books = self.engine, self.engine.books
        ts, starts, ends = index.inst_ts.tolist(), index.inst_start.tolist(), index.inst_end.tolist()
        never = len(ts)
        where = (eng.bn_venue, self.rate)
        for c in coins:
            c.refresh(index, 0, never, *where)
        work = bisect_left(ts, eng.next_work_ms())
        perf = time.perf_counter_ns
        while True:
            x = min(work, min(c.next_inst for c in coins))
            if x >= never:
                break
            timed = self._exact_instants % LATENCY_SAMPLE_EVERY == 0
            t0 = perf() if timed else 0
            books.cursor = starts[x] - 1      # orders due before this instant meet the books before it,
            fills = eng.fill_count
            if x and eng.now < ts[x - 1]:
                eng.advance_to(ts[x - 1])     # with the clock at the instant before, as in the per-event path
            eng.advance_to(ts[x])
            books.cursor = ends[x]
            eng.fill_due()                    # orders due at this instant fill before it is evaluated
            if eng.fill_count != fills:
                for c in coins:
                    if c.changed():
                        c.refresh(index, x, never, *where)
            due = [c for c in coins if c.next_inst == x]
            for c in due:
                self._sync(c, index)
                eng.mark_dirty(c.sym)
            fills = eng.fill_count
            if x + 1 < never:
                eng.advance_to(ts[x + 1])     # settles x, then fills what falls due before the next instant
            else:
                eng.settle()                  # the next chunk's first advance fills the rest
            for c in due:
                self._after_exact(c, ts[x])
            for c in (coins if eng.fill_count != fills else due):
                if c in due or c.changed():
                    c.refresh(index, x + 1, never, *where)
            if due:
                if timed:
                    self.latencies.append((perf() - t0) / 1e6)
                self._exact_instants += 1
                self.exact_evaluations += len(due)
            work = bisect_left(ts, eng.next_work_ms(), x + 1)
        books.cursor = index.n - 1
        if eng.now < ts[-1]:
            eng.advance_to(ts[-1])            # nothing falls due in between: those instants were taken above

    def _sync(self, c: _Coin, index: ChunkIndex) -> None:
        """Bring the coin's strategy to the sampling state the per-event path has at its next exact touch."""
        strat, scan = c.strat, c.scan
        j = int(scan.samples_before(c.next_touch))
        for v in scan.samples[c.pushed:j]:
            strat.window.push(v)
        c.pushed = j
        if j:
            last = c.times[j - 1]
            strat.next_sample_ms = last - last % strat.p.z_sample_ms + strat.p.z_sample_ms
            strat.last_premium = scan.samples[j - 1]
        else:
            strat.next_sample_ms, strat.last_premium = c.start_next, c.start_last
        self._trace_samples(c, j)

    def _after_exact(self, c: _Coin, now: int) -> None:
        j = c.pushed
        if j < len(c.sample_at) and c.sample_at[j] == c.next_touch:   # the exact rules took this sample
            if c.strat.last_premium != c.scan.samples[j] or c.strat.next_sample_ms <= now:
                raise RuntimeError(f"fast replay out of step with the exact rules: {c.sym} sample at {now}")
            c.pushed = c.traced = j + 1

    def _trace_samples(self, c: _Coin, upto: int) -> None:
        if upto > c.traced:
            self.engine.trace.premium[c.sym].extend(zip(c.times[c.traced:upto], c.scan.samples[c.traced:upto]))
            c.traced = upto

    def _name_premium_series(self, coins: list[_Coin]) -> None:
        """Create each coin's premium series in the order the per-event path does: by first sample."""
        series = self.engine.trace.premium
        first = sorted((int(c.inst[c.sample_at[0]]), c.sym) for c in coins if c.sample_at and c.sym not in series)
        for _, sym in first:
            series[sym] = ThinnedSeries()

    def _close_chunk(self, index: ChunkIndex, coins: list[_Coin], scans: dict, exact_before: int) -> None:
        """Hand each strategy its sampling state after the chunk; count the evaluations done in bulk."""
        eng = self.engine
        for c in coins:
            self._trace_samples(c, len(c.sample_at))
            c.strat.window.extend(c.scan.samples[c.pushed:])
            c.strat.next_sample_ms = c.scan.next_sample_ms
            if c.scan.samples:
                c.strat.last_premium = c.scan.samples[-1]
        exact = self.exact_evaluations - exact_before
        eng.trace.evaluations += sum(s.evaluations for s in scans.values()) - exact
        eng.trace.books += index.n

    # -- input checks ---------------------------------------------------------------------------
    def _keep_wanted(self, cols):
        """The rows of the universe's coins and KRW-USDT (the per-event runner drops the others too)."""
        if cols is None:
            return None
        wanted = np.array([s in self._wanted for s in cols.symbols], dtype=bool)
        if wanted.all():
            return cols if len(cols) else None
        keep = wanted[cols.symbol_code]
        return select(cols, keep) if keep.any() else None

    def _check_order(self, cols) -> None:
        ts, now = cols.ts_ms, self.engine.now
        back = np.flatnonzero(ts[1:] < ts[:-1])
        if ts[0] < now or back.size:
            i = 0 if ts[0] < now else int(back[0]) + 1
            before = now if i == 0 else int(ts[i - 1])
            raise ValueError(f"book {cols.venues[cols.venue_code[i]]} {cols.symbols[cols.symbol_code[i]]} at "
                             f"{int(ts[i])} is older than the clock {before}")
        if self.first_ts is not None and ts[0] == now:
            raise ValueError(f"chunk starts inside instant {now}, where the previous chunk ended: pass whole "
                             f"instants (FastReplay.run re-cuts chunks)")
