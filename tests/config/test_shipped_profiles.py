"""Every shipped profile loads, converts to domain objects, and hashes to a stable digest."""
from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
from pydantic import ValidationError

from config import schema
from config.loader import load_profile, shipped_profiles
from domain.orders import Direction
from domain.params import FxParams, Market, RiskLimits, StrategyParams
from domain.venues import Venue, VenueRules
from tests.config.support import shipped, write

SHIPPED = ["backtest-btc", "backtest-synthetic", "live-example", "live-local", "paper-top50", "paper-top50-local"]


def test_the_six_profiles_ship():
    assert shipped_profiles() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profile_loads_and_converts(name):
    profile = load_profile(name)
    assert profile.name == name
    params = profile.to_domain()
    assert isinstance(params.strategy, StrategyParams)
    assert isinstance(params.risk, RiskLimits)
    assert isinstance(params.fx, FxParams)
    assert isinstance(params.market, Market)
    assert set(params.market.rules) == set(Venue)
    assert all(isinstance(r, VenueRules) and r.venue is v for v, r in params.market.rules.items())
    assert all(isinstance(d, Direction) for d in params.strategy.directions)


def test_backtest_btc_values_reach_the_domain(data):
    profile = load_profile("backtest-btc")
    params = profile.to_domain()
    assert params.fx == FxParams("fixed", 1383.7, 1380.0)
    assert params.strategy.mode == "zscore" and params.strategy.z_window == 48
    assert params.strategy.z_sample_ms == 300_000
    assert params.market.rules[Venue.UPBIT].taker_fee == 0.0005
    assert params.market.rules[Venue.BINANCE].taker_fee == 0.0010
    assert params.market.rules[Venue.BINANCE_USDM].lot_size == 0.001
    assert params.market.leg_risk_policy == "unwind"
    assert profile.data.resolve("upbit_candles") == data / "btc" / "upbit_krw-btc_5m.csv"
    assert [s.upbit_market for s in profile.symbols()] == ["KRW-BTC"]
    assert profile.inventory["binance"] == {"USDT": 75000.0, "BTC": 0.5}


def test_top_n_profile_has_no_fixed_symbol_list():
    profile = load_profile("paper-top50-local")
    assert profile.symbols() is None and profile.universe.top_n == 50
    assert profile.endpoints["upbit"].ws.startswith("ws://127.0.0.1:")


def test_schema_covers_every_domain_parameter():
    """A field added to the domain dataclasses must be added to the schema too."""
    assert set(schema.Strategy.model_fields) == {f.name for f in dataclasses.fields(StrategyParams)}
    assert set(schema.Risk.model_fields) == {f.name for f in dataclasses.fields(RiskLimits)}
    assert set(schema.Fx.model_fields) == {f.name for f in dataclasses.fields(FxParams)}


def test_profile_is_frozen():
    profile = load_profile("backtest-btc")
    with pytest.raises(ValidationError):
        profile.strategy.order_notional_krw = 1.0


def test_digest_is_sha256_of_canonical_json_and_stable():
    first, second = load_profile("backtest-btc"), load_profile("backtest-btc")
    assert first.digest() == second.digest()
    canonical = json.dumps(json.loads(first.canonical_json()), sort_keys=True, separators=(",", ":"))
    assert first.digest() == hashlib.sha256(canonical.encode()).hexdigest()
    assert len({load_profile(n).digest() for n in SHIPPED}) == len(SHIPPED)


def test_digest_ignores_layout_but_not_values(tmp_path):
    base = load_profile("backtest-btc").digest()
    doc = shipped("backtest-btc")
    reordered = dict(reversed(list(doc.items())))          # key order and comments do not count
    assert load_profile(write(tmp_path, reordered)).digest() == base
    doc["strategy"]["z_entry"] = 2.5
    assert load_profile(write(tmp_path, doc)).digest() != base


def test_digest_is_of_the_resolved_profile(tmp_path):
    """Leaving out a key that equals its default resolves to the same profile and digest."""
    doc = shipped("backtest-btc")
    del doc["execution"], doc["strategy"]["depth_fraction"], doc["venues"]["binance_usdm"]
    assert load_profile(write(tmp_path, doc)).digest() == load_profile("backtest-btc").digest()


def test_command_line_check(tmp_path):
    """The pre-run check a shell or CI calls: ok lines on stdout, problems on stderr, exit 2."""
    import subprocess
    import sys

    from config.paths import REPO

    doc = shipped("backtest-btc")
    doc["strategy"]["take_profit_bps"] = 0
    bad = write(tmp_path, doc)
    run = subprocess.run([sys.executable, "-m", "config.loader", "backtest-btc", str(bad)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stdout.startswith(f"ok backtest-btc mode=backtest digest={load_profile('backtest-btc').digest()}")
    assert f"{bad}: strategy.take_profit_bps: expected a number > 0" in run.stderr
