"""Backtest throughput: book events/s of the in-process engine on a SYNTHETIC Top-N stream.

    python -m bench.backtest_throughput [--coins 50] [--days 0.05] [--trading]

Prints the engine-only rate (chunks generated beforehand, fill model on), the streaming rate
with the generator in the loop, the projected time for Top50 x 30 days of 1-second books on one
and two cores, the ratio to the prior system's 2-hour bar, and the peak RSS of streaming runs of
two window lengths (each in a fresh process) to show memory does not grow with the window.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from backtest.fast_replay import FastReplay, LazyBooks
from backtest.runner import build_engine, starting_balances
from bench.scenarios import synthetic_profile, synthetic_stream

TOP50_30_DAYS = 50 * 2 * 86_400 * 30 + 86_400 * 30  # coins x venues + the FX book, 1 s cadence: ~262 M
PRIOR_BAR_S = 2 * 3600


def replay(coins: int, days: float, trading: bool, pregenerate: bool) -> dict:
    """One fast replay; returns events, seconds, events/s, round trips and Books built."""
    profile = synthetic_profile(coins, trading)
    stream = synthetic_stream(coins, days)
    symbols = list(stream.symbols)
    engine = build_engine(profile, symbols, starting_balances(profile, symbols, stream), books=LazyBooks())
    chunks = list(stream.columns()) if pregenerate else stream.columns()
    started = time.perf_counter()
    FastReplay(engine).run(chunks)
    seconds = time.perf_counter() - started
    return {"events": engine.trace.books, "seconds": round(seconds, 3),
            "events_per_s": round(engine.trace.books / seconds), "round_trips": len(engine.portfolio.round_trips),
            "books_built": engine.books.built,
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def peak_rss(coins: int, days: float, trading: bool) -> dict:
    """A streaming replay of `days` in a fresh process, so its peak RSS is its own."""
    cmd = [sys.executable, "-m", "bench.backtest_throughput", "--child", "--coins", str(coins), "--days", str(days)]
    out = subprocess.run(cmd + (["--trading"] if trading else []), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coins", type=int, default=50)
    ap.add_argument("--days", type=float, default=0.05, help="window timed for the rate (0.05 = 72 min)")
    ap.add_argument("--trading", action="store_true", help="zero-fee variant that trades (exact path busier)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(replay(args.coins, args.days, args.trading, pregenerate=False)))
        return 0
    label = "trading variant (zero fees)" if args.trading else "backtest-synthetic as shipped"
    print(f"SYNTHETIC Top{args.coins}, 1-second books, both venues + KRW-USDT, fill model on, {label}")
    engine = replay(args.coins, args.days, args.trading, pregenerate=True)
    print(f"engine only (chunks generated beforehand): {engine['events']:,} events in {engine['seconds']} s = "
          f"{engine['events_per_s']:,} events/s; {engine['round_trips']} round trips; "
          f"{engine['books_built']:,} Books built")
    streamed = replay(args.coins, args.days, args.trading, pregenerate=False)
    print(f"streaming (generator in the loop):         {streamed['events_per_s']:,} events/s")
    for name, rate in (("engine only", engine["events_per_s"]), ("streaming", streamed["events_per_s"])):
        one = TOP50_30_DAYS / rate
        print(f"Top50 x 30 days ({TOP50_30_DAYS / 1e6:.0f} M events), {name}: 1 core {one / 60:.1f} min, "
              f"2 cores {one / 120:.1f} min (symbols sharded in halves; each shard gets half the cash, "
              f"per-coin inventory unchanged); prior 2 h bar / 1 core = {PRIOR_BAR_S / one:.1f}x")
    for days in (args.days, args.days * 4):
        rss = peak_rss(args.coins, days, args.trading)
        print(f"peak RSS, streaming {days:g} days ({rss['events']:,} events): {rss['max_rss_mb']} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
