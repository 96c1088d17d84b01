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
    if not 0 < worker_share < 1:
        raise ValueError(f"worker_share {worker_share}: expected a fraction between 0 and 1")
    return [s for i, s in enumerate(symbols) if int((i + 1) * worker_share) > int(i * worker_share)]


class ShardedScans:
    """FastReplay's scan source with a second process: `worker_coins` are scanned there."""

    def __init__(self, engine: Engine, worker_coins: list[str], context: str = "spawn"):
        unknown = sorted(set(worker_coins) - set(engine.strategies))
        if unknown:
            raise ValueError(f"sharded scans: {unknown} are not in the engine's universe")
        fresh = [s for s, strat in engine.strategies.items() if len(strat.window) or strat.next_sample_ms]
        if fresh:
            raise ValueError(f"sharded scans start from fresh strategies ({fresh[:3]} already sampled): the "
                             "worker rebuilds each coin's z-score sampling from the data")
        self.engine = engine
        self.rate = fixed_rate(engine.fx_params)
        self.local = [s for s in engine.strategies if s not in set(worker_coins)]
        self.remote = [s for s in engine.strategies if s in set(worker_coins)]
        strategies = [(s, engine.strategies[s].p, engine.strategies[s].fees) for s in self.remote]
        ctx = mp.get_context(context)
        self._inbox, self._outbox = ctx.Queue(), ctx.Queue()
        self._fed: deque = deque()
        self.worker_usage: dict = {}     # the worker's cpu_s and max_rss_mb, once it has ended
        self.worker_cpu_s = 0.0          # its CPU seconds as of the last chunk it scanned
        self._proc = ctx.Process(target=_work, args=(self._inbox, self._outbox, strategies, engine.bn_venue, self.rate),
                                 name="backtest-scan-shard", daemon=True)
        self._proc.start()
        try:
            if self._receive() != READY:   # a worker that cannot start fails here, before any data is read
                raise ShardError("sharded scans: the worker did not report ready")
        except BaseException:
            self.close()
            raise

    def feed(self, cols: BookColumns) -> None:
        self._inbox.put(_slim(cols))
        self._fed.append(cols)

    def scans(self, index: ChunkIndex) -> dict[str, CoinScan]:
        if not self._fed:
            self.feed(index.cols)
        if self._fed[0] is not index.cols:
            raise ShardError("sharded scans: a chunk was applied out of the order it was fed")
        self._fed.popleft()
        eng = self.engine
        out = {s: scan_coin(index, eng.strategies[s], eng.bn_venue, self.rate) for s in self.local}
        rows, first, last, remote, self.worker_cpu_s = self._receive()
        if (rows, first, last) != (index.n, int(index.inst_ts[0]), int(index.inst_ts[-1])):
            raise ShardError(f"sharded scans: the worker scanned rows {rows} ({first}..{last}), this chunk has "
                             f"{index.n} ({index.inst_ts[0]}..{index.inst_ts[-1]})")
        out.update(remote)
        return out

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
        while (slim := inbox.get()) is not None:
            ts, venue, symbol, venues, symbols, bid, ask = slim
            empty = np.zeros((len(ts), 1))
            cols = BookColumns(ts, venue, symbol, venues, symbols, bid[:, None], empty, ask[:, None], empty)
            index = ChunkIndex(cols, carry)
            scans = {}
            for strat in strats:
                scan = scans[strat.symbol] = scan_coin(index, strat, bn_venue, rate)
                strat.window.extend(scan.samples)
                strat.next_sample_ms = scan.next_sample_ms
            usage = resource.getrusage(resource.RUSAGE_SELF)
            outbox.put((index.n, int(index.inst_ts[0]), int(index.inst_ts[-1]), scans, usage.ru_utime + usage.ru_stime))
            carry = index.carry_after()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        outbox.put({"cpu_s": usage.ru_utime + usage.ru_stime, "max_rss_mb": peak_rss_mb()})
    except BaseException:   # the parent re-raises it with this traceback
        outbox.put(traceback.format_exc())
