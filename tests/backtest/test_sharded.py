"""Two processes give the single-process run: same orders, fills, round trips, guard decisions and KPIs."""
from __future__ import annotations

from itertools import islice

import pytest

from backtest.fast_replay import FastReplay, LazyBooks
from backtest.outputs import WALL_CLOCK_FIELDS
from backtest.runner import build_engine, run_backtest
from backtest.sharded import ShardedScans, ShardError, split
from bench.scenarios import synthetic_profile, synthetic_stream
from tests.backtest.parity import assert_same, balances_for, fast_run
from tests.backtest.test_fast_replay import HELD

COINS, DAYS = 4, 0.03
# The global guards couple coins: two open positions at a time across the universe, and a daily loss
# limit the run reaches (the per-coin scans know nothing of either).
BINDING = {"max_open_positions": 2, "daily_loss_limit_krw": 1500.0}


@pytest.mark.parametrize("risk", [{}, BINDING], ids=["guards_slack", "guards_bind"])
def test_two_processes_trade_exactly_like_one(risk, tmp_path):
    profile = synthetic_profile(COINS, trading=True, strategy=HELD, risk=risk)
    runs = {n: run_backtest(profile, out_root=tmp_path, stream=synthetic_stream(COINS, DAYS), progress=False,
                            report=False, processes=n) for n in (1, 2)}
    one, two = runs[1], runs[2]
    assert_same(two.engine, one.engine)
    skip = set(WALL_CLOCK_FIELDS) | {"processes", "notes"}
    assert {k: v for k, v in two.kpi.items() if k not in skip} == {k: v for k, v in one.kpi.items() if k not in skip}
    assert one.kpi["round_trips"] >= 3
    triggers = set(one.kpi["guard_triggers"])
    assert ({"max_open_positions", "daily_loss"} <= triggers) == bool(risk)
    assert two.kpi["processes"] == 2 and any("2 processes" in n for n in two.kpi["notes"])
    assert two.kpi["cpu_s"] > 0


def test_the_worker_takes_its_share_of_the_coins():
    coins = [f"C{i}" for i in range(10)]
    assert split(coins, 0.5) == coins[1::2]
    assert len(split(coins, 0.7)) == 7 and len(split(coins, 0.3)) == 3
    assert split(coins, 1.0) == coins
    with pytest.raises(ValueError, match="worker_share"):
        split(coins, 0.0)


def test_a_dead_worker_stops_the_run_with_its_exit_code():
    profile = synthetic_profile(2, trading=False)
    stream = synthetic_stream(2, 0.01)
    symbols = list(stream.symbols)
    engine = build_engine(profile, symbols, balances_for(profile, symbols, stream.columns), books=LazyBooks())
    scans = ShardedScans(engine, symbols[:1])
    scans._proc.kill()
    with pytest.raises(ShardError, match="exited with code"):
        FastReplay(engine, scans=scans).run(stream.columns())


def test_strategies_that_already_sampled_are_refused():
    profile = synthetic_profile(2, trading=False)
    stream = synthetic_stream(2, 0.01)
    symbols = list(stream.symbols)
    engine, _ = fast_run(profile, symbols, stream.columns, balances_for(profile, symbols, stream.columns))
    with pytest.raises(ValueError, match="fresh strategies"):
        ShardedScans(engine, symbols[:1])


class _Seesaw(ShardedScans):
    """Reports one process, then the other, as the busier: coins keep moving both ways."""

    def _measure(self) -> None:
        super()._measure()
        self._load = (1.0, 10.0) if len(self.moves) % 4 < 2 else (10.0, 1.0)


def test_coins_moving_between_the_processes_mid_run_change_nothing():
    profile = synthetic_profile(COINS, trading=True, strategy=HELD)
    stream = synthetic_stream(COINS, DAYS, rows_per_chunk=1000)   # many chunks, so many moves
    symbols = list(stream.symbols)
    balances = balances_for(profile, symbols, stream.columns)
    one, _ = fast_run(profile, symbols, stream.columns, balances)
    engine = build_engine(profile, symbols, balances, books=LazyBooks())
    scans = _Seesaw(engine, symbols)
    replay = FastReplay(engine, scans=scans)
    chunks = stream.columns()
    replay.consume(islice(chunks, 7))   # in two calls, as the bench does: a move may open the second
    replay.run(chunks)
    ways = {way for _, way in scans.moves}
    assert ways == {"back", "to worker"} and len(scans.moves) >= 4
    assert_same(engine, one)
    assert len(one.portfolio.round_trips) >= 3
