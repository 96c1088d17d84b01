"""Two processes on one backtest: a worker scans part of the coins of every chunk, this process the rest.

What a scan works out (touches, z-score samples and window statistics, entry candidates: see
coin_scan.py) follows from the data alone, so it shards across coins with nothing to reconcile.
Everything that couples coins stays in one Engine in this process: the shared cash balances, the
global guards (total and venue exposure, open positions, daily loss), the order of decisions
within an instant and the equity curve. The merged run is therefore the single-process run, guards
binding or not; tests/backtest/test_sharded.py checks it on both kinds of scenario.

The worker gets only the 1-D columns a scan reads (times, codes, best prices), one chunk ahead
of the engine, and sends back each coin's CoinScan.
"""
from __future__ import annotations

import multiprocessing as mp
import queue
import resource
import time
import traceback
from collections import deque

import numpy as np

from backtest.chunk_index import ChunkIndex
from backtest.coin_scan import CoinScan, fixed_rate, scan_coin
from backtest.outputs import peak_rss_mb
from domain.engine import Engine
from domain.strategy import SymbolStrategy
from marketdata.parquet_books import BookColumns

POLL_S = 1.0   # how often a wait for the worker checks that it is still alive
READY = "ready"


class ShardError(RuntimeError):
    """The scan worker failed or went away; the message carries its traceback or exit code."""


def split(symbols: list[str], worker_share: float) -> list[str]:
    """The coins the worker scans: every coin whose running share crosses the next whole number."""
    if not 0 < worker_share <= 1:
        raise ValueError(f"worker_share {worker_share}: expected a fraction in (0, 1]")
    return [s for i, s in enumerate(symbols) if int((i + 1) * worker_share) > int(i * worker_share)]


class ShardedScans:
    """FastReplay's scan source with a second process: `worker_coins` are scanned there at first.

    With `balance`, coins move between the processes while one spends clearly more CPU per chunk
    than the other (this one also reads the data and runs the engine). A move takes effect at the
    next chunk fed: a coin coming back is scanned here from the state this process holds by then;
    a coin handed over waits in the worker for its state (window and next sample time), sent when
    this process has applied the chunk before.
    """

    def __init__(self, engine: Engine, worker_coins: list[str], context: str = "spawn", balance: bool = True):
        unknown = sorted(set(worker_coins) - set(engine.strategies))
        if unknown:
            raise ValueError(f"sharded scans: {unknown} are not in the engine's universe")
        fresh = [s for s, strat in engine.strategies.items() if len(strat.window) or strat.next_sample_ms]
        if fresh:
            raise ValueError(f"sharded scans start from fresh strategies ({fresh[:3]} already sampled): the "
                             "worker rebuilds each coin's z-score sampling from the data")
        self.engine = engine
        self.rate = fixed_rate(engine.fx_params)
        self.balance = balance
        self.local = [s for s in engine.strategies if s not in set(worker_coins)]
        self.remote = [s for s in engine.strategies if s in set(worker_coins)]
        ctx = mp.get_context(context)
        self._inbox, self._outbox = ctx.Queue(), ctx.Queue()
        self._fed: deque = deque()       # (chunk, coins this process scans in it)
        self.worker_usage: dict = {}     # the worker's cpu_s and max_rss_mb, once it has ended
        self.worker_cpu_s = 0.0          # its CPU seconds as of the last chunk it scanned
        self.moves: list[tuple[str, str]] = []   # (coin, "to worker" | "back"), in order
        self._handing: list[str] = []    # coins handed over whose state goes with the next after_chunk
        self._load: tuple[float, float] | None = None   # smoothed CPU per chunk: (this process, worker)
        self._samples = 0
        self._marks = (time.process_time(), 0.0)
        self._proc = ctx.Process(target=_work, args=(self._inbox, self._outbox, self._specs(self.remote),
                                                     engine.bn_venue, self.rate),
                                 name="backtest-scan-shard", daemon=True)
        self._proc.start()
        try:
            if self._receive() != READY:   # a worker that cannot start fails here, before any data is read
                raise ShardError("sharded scans: the worker did not report ready")
        except BaseException:
            self.close()
            raise

    def feed(self, cols: BookColumns, rebalance: bool = True) -> None:
        # a coin handed over needs its state as of the end of the chunk before this one: at most
        # that chunk may still be waiting to be applied (after_chunk sends the state then)
        waiting = len(self._fed)
        drop, hand = self._rebalance() if rebalance and waiting <= 1 else ([], [])
        self._inbox.put(("chunk", _slim(cols), drop, self._specs(hand)))
        if hand and not waiting:
            self.after_chunk()   # every chunk fed so far is applied: the state is here already
        self._fed.append((cols, tuple(self.local)))

    def scans(self, index: ChunkIndex) -> dict[str, CoinScan]:
        if not self._fed:
            self.feed(index.cols, rebalance=False)   # applied without a feed ahead: no state could follow
        cols, local = self._fed.popleft()
        if cols is not index.cols:
            raise ShardError("sharded scans: a chunk was applied out of the order it was fed")
        eng = self.engine
        out = {s: scan_coin(index, eng.strategies[s], eng.bn_venue, self.rate) for s in local}
        rows, first, last, remote, self.worker_cpu_s = self._receive()
        if (rows, first, last) != (index.n, int(index.inst_ts[0]), int(index.inst_ts[-1])):
            raise ShardError(f"sharded scans: the worker scanned rows {rows} ({first}..{last}), this chunk has "
                             f"{index.n} ({index.inst_ts[0]}..{index.inst_ts[-1]})")
        if set(remote) | set(local) != set(eng.strategies) or set(remote) & set(local):
            raise ShardError(f"sharded scans: the worker scanned {sorted(remote)}, this process {sorted(local)}")
        out.update(remote)
        self._measure()
        return out

    def after_chunk(self) -> None:
        """The engine has applied a chunk: the coins handed over can have their state now."""
        if self._handing:
            strats = self.engine.strategies
            self._inbox.put(("state", {s: (list(strats[s].window.values), strats[s].next_sample_ms)
                                       for s in self._handing}))
            self._handing = []

    def _specs(self, symbols: list[str]) -> list[tuple]:
        strats = self.engine.strategies
        return [(s, strats[s].p, strats[s].fees) for s in symbols]

    def _measure(self) -> None:
        """CPU each process spent since the last chunk (this one: engine, data, its scans, pickling)."""
        mine, theirs = time.process_time(), self.worker_cpu_s
        sample = (mine - self._marks[0], theirs - self._marks[1])
        self._marks = (mine, theirs)
        old = self._load
        self._load = sample if old is None else tuple(0.7 * o + 0.3 * x for o, x in zip(old, sample))
        self._samples += 1

    def _rebalance(self) -> tuple[list[str], list[str]]:
        """(coins to take back, coins to hand over) when one process is clearly the busier."""
        if not self.balance or self._load is None or self._samples < 2 or self._handing:
            return [], []
        mine, theirs = self._load
        per_coin = theirs / max(len(self.remote), 1)   # one coin's scan, as the worker's figures show
        if per_coin <= 0:
            return [], []
        n = int(abs(theirs - mine) / 2 / per_coin)
        if theirs > 1.1 * mine and len(self.remote) > 1:
            n = min(max(n, 1), len(self.remote) // 4 + 1, len(self.remote) - 1)
            back, self.remote = self.remote[-n:], self.remote[:-n]
            self.local += back
            self.moves += [(s, "back") for s in back]
            moved = (back, [])
        elif mine > 1.1 * theirs and self.local:
            n = min(max(n, 1), len(self.local) // 4 + 1)
            hand, self.local = self.local[-n:], self.local[:-n]
            self.remote += hand
            self._handing = hand
            self.moves += [(s, "to worker") for s in hand]
            moved = ([], hand)
        else:
            return [], []
        self._load, self._samples = None, 0   # judge the new split on fresh measurements
        return moved

    def close(self) -> None:
        """Stop the worker: it ends on the None sentinel with its CPU and memory (worker_usage)."""
        if self._proc is None:
            return
        try:
            self._inbox.put(None)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    message = self._outbox.get(timeout=0.2)
                except queue.Empty:
                    if not self._proc.is_alive():
                        break
                    continue
                if isinstance(message, dict):
                    self.worker_usage = message
                    break
            self._proc.join(timeout=5)
        finally:
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(timeout=5)
            for q in (self._inbox, self._outbox):
                q.close()
                q.cancel_join_thread()
            self._proc = None

    def _receive(self):
        while True:
            try:
                message = self._outbox.get(timeout=POLL_S)
            except queue.Empty:
                if not self._proc.is_alive():
                    raise ShardError(f"sharded scans: the worker exited with code {self._proc.exitcode}") from None
                continue
            if isinstance(message, str) and message != READY:
                raise ShardError(f"sharded scans: the worker failed:\n{message}")
            return message


def _slim(cols: BookColumns) -> tuple:
    """What a scan reads of a chunk: times, codes and the best level of each side."""
    return (cols.ts_ms, cols.venue_code, cols.symbol_code, cols.venues, cols.symbols,
            np.ascontiguousarray(cols.bid_px[:, 0]), np.ascontiguousarray(cols.ask_px[:, 0]))


def _work(inbox, outbox, strategies, bn_venue: str, rate: float | None) -> None:
    """The worker: scan its coins over every chunk it is fed, carrying each coin's sampling state."""
    try:
        strats = [SymbolStrategy(sym, params, fees) for sym, params, fees in strategies]
        carry: dict = {}
        outbox.put(READY)
        while (message := inbox.get()) is not None:
            _, slim, drop, hand = message
            strats = [st for st in strats if st.symbol not in drop]
            ts, venue, symbol, venues, symbols, bid, ask = slim
            empty = np.zeros((len(ts), 1))
            cols = BookColumns(ts, venue, symbol, venues, symbols, bid[:, None], empty, ask[:, None], empty)
            index = ChunkIndex(cols, carry)
            scans = {}
            for strat in strats:
                scans[strat.symbol] = _scan(index, strat, bn_venue, rate)
            if hand:   # coins handed over: their state comes once the engine has applied the chunk before
                kind, states = inbox.get()
                if kind != "state" or set(states) != {sym for sym, _, _ in hand}:
                    raise ShardError(f"expected the state of {[sym for sym, _, _ in hand]}, got {kind} {list(states)}")
                for sym, params, fees in hand:
                    strat = SymbolStrategy(sym, params, fees)
                    values, strat.next_sample_ms = states[sym]
                    strat.window.extend(values)
                    strats.append(strat)
                    scans[sym] = _scan(index, strat, bn_venue, rate)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            outbox.put((index.n, int(index.inst_ts[0]), int(index.inst_ts[-1]), scans, usage.ru_utime + usage.ru_stime))
            carry = index.carry_after()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        outbox.put({"cpu_s": usage.ru_utime + usage.ru_stime, "max_rss_mb": peak_rss_mb()})
    except BaseException:   # the parent re-raises it with this traceback
        outbox.put(traceback.format_exc())


def _scan(index: ChunkIndex, strat: SymbolStrategy, bn_venue: str, rate: float | None) -> CoinScan:
    """Scan one coin and carry its sampling state past the chunk."""
    scan = scan_coin(index, strat, bn_venue, rate)
    strat.window.extend(scan.samples)
    strat.next_sample_ms = scan.next_sample_ms
    return scan
