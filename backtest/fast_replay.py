"""Replay column chunks through the engine, running the exact per-event path only where it can matter.

The plain path builds a Book per event and evaluates every touched symbol when its instant
closes. Most of those evaluations provably change nothing: the symbol is flat with nothing
pending, no z-score sample is due, and the top-of-book premium (which no depth walk can beat)
misses the entry threshold. This driver keeps the latest row of each book unbuilt (a Book is
made only when something reads it), counts the skipped evaluations, and hands the engine only
the symbols that need the exact rules. Orders, fills, round trips and KPIs are identical to the
plain path (tests/backtest/test_fast_replay.py holds it to that).
"""
from __future__ import annotations

import time
from typing import Callable, Iterable

import numpy as np

from domain.engine import Engine
from domain.symbols import FX_SYMBOL

LATENCY_SAMPLE_EVERY = 16  # time one exact instant in 16


class LazyBooks(dict):
    """The engine's latest-book map, holding (chunk, row) until a Book is read, then the Book."""

    __slots__ = ("built",)

    def __init__(self):
        super().__init__()
        self.built = 0  # Books actually made: what the fast path saves shows here

    def __getitem__(self, key):
        value = dict.__getitem__(self, key)
        return self._build(key, value) if type(value) is tuple else value

    def get(self, key, default=None):
        value = dict.get(self, key, default)
        return self._build(key, value) if type(value) is tuple else value

    def _build(self, key, row):
        book = row[0].book(row[1])
        dict.__setitem__(self, key, book)
        self.built += 1
        return book


class FastReplay:
    """Drives one Engine (built with books=LazyBooks()) from BookColumns chunks."""

    def __init__(self, engine: Engine, on_chunk: Callable[[int], None] | None = None):
        if not isinstance(engine.books, LazyBooks):
            raise TypeError("FastReplay needs an Engine built with books=LazyBooks()")
        self.engine = engine
        self.on_chunk = on_chunk          # called with the rows applied after each chunk
        self.latencies: list[float] = []  # ms per exact instant, one in LATENCY_SAMPLE_EVERY
        self.first_ts: int | None = None
        self._best: dict[tuple[str, str], tuple[float, float]] = {}
        self._fx_ok = engine.fx_params.source == "fixed"
        self._fixed_fx = engine.fx_params.source == "fixed"
        self._skipped: set[str] = set()   # touched this instant with both books in, evaluated by nobody
        self._exact: set[str] = set()     # touched this instant, handed to the engine
        self._work_ms = 0                 # engine.next_work_ms(), refreshed after each exact instant
        self._exact_instants = 0
        self._bounds: dict[str, tuple[int, tuple[float, float] | None]] = {}

    def run(self, chunks: Iterable) -> Engine:
        """Apply every chunk in order, then finish the engine (in-flight orders, last equity mark)."""
        for cols in chunks:
            self.apply(cols)
        self._close_instant()
        self.engine.finish()
        return self.engine

    def apply(self, cols) -> None:
        """Apply one chunk of books (rows in time order, as the generator and Parquet reader give)."""
        eng = self.engine
        wanted = [name in eng.strategies or name == FX_SYMBOL for name in cols.symbols]
        rows = np.flatnonzero(np.asarray(wanted, dtype=bool)[cols.symbol_code])
        if not len(rows):
            return
        if self.first_ts is None:
            self.first_ts = int(cols.ts_ms[rows[0]])
        bn_venue = eng.bn_venue
        keys = [[(v, s) for s in cols.symbols] for v in cols.venues]
        strategies = [eng.strategies.get(s) for s in cols.symbols]
        fx_code = cols.symbols.index(FX_SYMBOL) if FX_SYMBOL in cols.symbols else -1
        upbit_code = cols.venues.index("upbit") if "upbit" in cols.venues else -1
        ts_l = cols.ts_ms[rows].tolist()
        v_l = cols.venue_code[rows].tolist()
        s_l = cols.symbol_code[rows].tolist()
        bid_l = cols.bid_px[rows, 0].tolist()
        ask_l = cols.ask_px[rows, 0].tolist()
        row_l = rows.tolist()
        books, best, exact, skipped = eng.books, self._best, self._exact, self._skipped
        setbook = dict.__setitem__
        perf = time.perf_counter_ns
        for j in range(len(row_l)):
            ts = ts_l[j]
            if ts != eng.now:
                if ts < eng.now:
                    eng.advance_to(ts, cols.venues[v_l[j]], cols.symbols[s_l[j]])  # raises, naming the book
                self._close_instant()
                if exact or ts > self._work_ms:
                    timed = bool(exact) and self._exact_instants % LATENCY_SAMPLE_EVERY == 0
                    t0 = perf() if timed else 0
                    had_exact = bool(exact)
                    exact.clear()
                    eng.advance_to(ts)
                    if timed:
                        self.latencies.append((perf() - t0) / 1e6)
                    self._exact_instants += had_exact
                    self._work_ms = eng.next_work_ms()
                else:
                    eng.now = ts
            v, s = v_l[j], s_l[j]
            key = keys[v][s]
            setbook(books, key, (cols, row_l[j]))
            bid, ask = bid_l[j], ask_l[j]
            best[key] = (bid, ask)
            if s == fx_code:
                if v == upbit_code:
                    self._fx_ok = self._fixed_fx or (bid == bid and ask == ask)
                if not self._fixed_fx:
                    for name in eng.strategies:
                        self._touch(name, ts, bn_venue)
            elif strategies[s] is not None:
                self._touch(cols.symbols[s], ts, bn_venue)
        eng.trace.books += len(row_l)
        if self.on_chunk is not None:
            self.on_chunk(len(row_l))

    def _touch(self, name: str, ts: int, bn_venue: str) -> None:
        """A book `name` is evaluated on changed: decide whether the exact rules must see it."""
        if name in self._exact:
            return
        strat = self.engine.strategies[name]
        best = self._best
        up = best.get(("upbit", name))
        bn = best.get((bn_venue, name))
        fx = self._fixed_quote() if self._fixed_fx else best.get(("upbit", FX_SYMBOL))
        if up is None or bn is None:
            return               # the engine returns before counting an evaluation
        need = False
        if fx is not None and self._fx_ok:
            if ts >= self._work_ms or ts >= strat.next_sample_ms:
                need = True      # a fill may land before the evaluation, or a sample is due
            elif not strat.pending:
                if strat.position is not None:
                    need = True  # exits are decided on the exact quotes
                elif ts >= strat.cooldown_until_ms:
                    need = self._entry_possible(name, strat, up, bn, fx)
        if need:
            self._exact.add(name)
            self._skipped.discard(name)
            self.engine.mark_dirty(name)
        else:
            self._skipped.add(name)

    def _entry_possible(self, name: str, strat, up, bn, fx) -> bool:
        """strat.entry_possible through limits cached until the strategy's next sample moves them."""
        cached = self._bounds.get(name)
        if cached is None or cached[0] != strat.next_sample_ms:
            cached = (strat.next_sample_ms, strat.entry_bounds())
            self._bounds[name] = cached
        bounds = cached[1]
        if bounds is None:
            return False
        return up[0] / (bn[1] * fx[1]) >= bounds[0] or up[1] / (bn[0] * fx[0]) <= bounds[1]

    def _fixed_quote(self) -> tuple[float, float]:
        q = self.engine.fx()
        return q.bid, q.ask

    def _close_instant(self) -> None:
        """Count the evaluations the plain path would have made and this one skipped."""
        if self._skipped:
            if self._fx_ok:  # without a USDT/KRW rate the engine returns before counting
                self.engine.trace.evaluations += len(self._skipped)
            self._skipped.clear()
