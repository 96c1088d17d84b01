"""domain/state.py: export -> import -> export is identical, and a restored engine, portfolio or paper
desk continues to exactly the results of an uninterrupted run (real BTC candles, synthetic Top-N books)."""
from __future__ import annotations

import itertools
import json
from collections import deque
from dataclasses import fields, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest.runner import build_engine
from backtest.streams import from_profile
from config.loader import load_profile
from domain.engine import Engine, Trace
from domain.kpi import trading_kpis
from domain.ledger import Ledger, PerpPosition
from domain.risk import RiskState
from domain.state import (DESK_CONFIG, DESK_STATE, ENGINE_CONFIG, ENGINE_STATE, PORTFOLIO_CONFIG, PORTFOLIO_STATE,
                          SHARD_CONFIG, SHARD_STATE, STRATEGY_CONFIG, STRATEGY_STATE, TRACE_FIELDS, StateError,
                          export_engine, export_portfolio, export_shard, export_strategies, restore_engine,
                          restore_portfolio, restore_shard, restore_strategies)
from marketdata.synthetic import SyntheticConfig, SyntheticMarket
from paper.desk import News, PaperDesk
from paper.shard import StrategyShard
from snapshots import InMemorySnapshotStore, key
from snapshots.envelope import canonical_json

CANDLE_BOOKS = 8000          # ~28 days of 5-minute bars: six round trips of the real BTC backtest
SLOW = settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(max_examples=40, deadline=None)


def through_store(doc: dict) -> dict:
    """What a restarted actor reads back: the document stored and verified by a snapshot store."""
    store = InMemorySnapshotStore()
    k = key("state-test", "coordinator", "main")
    store.put(k, doc)
    return store.get(k).payload


def outcome(engine: Engine) -> str:
    """Everything the run produced, as one string: the final state document plus the trading KPIs."""
    pf = engine.portfolio
    kpis = trading_kpis(pf.round_trips, engine.trace.orders, engine.trace.fills, engine.trace.equity,
                        pf.decisions, pf.risk.triggers, pf.failed_entries, len(pf.open_positions()), 1380.0)
    return canonical_json({"state": export_engine(engine), "kpis": kpis})


class Replay:
    """One stream and how to build its engine; runs it whole or cut in two around a snapshot."""

    def __init__(self, books, build):
        self.books, self.build = books, build
        engine = build()
        self.in_flight: list[int] = []     # cut points where orders are in flight
        self.open: list[int] = []          # cut points where a position is open
        for i, book in enumerate(books):
            engine.on_book(book)
            if engine.pending:
                self.in_flight.append(i + 1)
            if engine.portfolio.open_positions():
                self.open.append(i + 1)
        engine.finish()
        self.reference = outcome(engine)
        self.engine = engine

    def resumed(self, cut: int) -> tuple[str, str, str]:
        """(exported at the cut, exported again after restoring it, outcome of the resumed run)."""
        first = self.build()
        for book in self.books[:cut]:
            first.on_book(book)
        doc = through_store(export_engine(first))
        second = self.build()
        restore_engine(second, doc)
        again = export_engine(second)
        for book in self.books[cut:]:
            second.on_book(book)
        second.finish()
        return canonical_json(doc), canonical_json(again), outcome(second)


# -- streams ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def btc_profile():
    return load_profile("backtest-btc")


@pytest.fixture(scope="module")
def candle_books(btc_profile):
    return list(itertools.islice(from_profile(btc_profile).books, CANDLE_BOOKS))


@pytest.fixture(scope="module")
def candles(btc_profile, candle_books):
    """The real BTC candle backtest (z-score rules, spot inventory hedge)."""
    return Replay(candle_books, lambda: build_engine(btc_profile, ["BTC"]))


@pytest.fixture(scope="module")
def candles_perp(btc_profile, candle_books):
    """The same bars with the Binance leg on USDT-M perpetuals: perp positions and 8-hourly funding."""
    params = btc_profile.to_domain()
    books = [replace(b, venue="binance_usdm") if b.venue == "binance" else b for b in candle_books]
    balances = {("upbit", "KRW"): 100_000_000, ("upbit", "BTC"): 0.5, ("binance_usdm", "USDT"): 75_000}
    return Replay(books, lambda: Engine(["BTC"], replace(params.strategy, hedge="perp"), params.risk,
                                        params.market, params.fx, dict(balances)))


def synthetic_setup(policy: str):
    """Synthetic Top-4 books and rules that trade constantly, with partial fills, unwinds and stuck legs."""
    params = load_profile("paper-top50-local").to_domain()
    strat = replace(params.strategy, mode="absolute", baseline_bps=-2000.0, max_hold_ms=5000, cooldown_ms=1000,
                    depth_fraction=1.0, order_notional_krw=12_000_000)
    risk = replace(params.risk, max_consecutive_losses=10**6)
    market = replace(params.market, leg_risk_policy=policy)
    gen = SyntheticMarket(SyntheticConfig(coins=4, days=300 / 86_400, seed=5))
    books = list(gen.books())
    mids: dict[str, float] = {}
    for b in books:
        if b.venue == "upbit":
            mids.setdefault(b.symbol, b.mid)
    balances = {("upbit", "KRW"): 500_000_000, ("binance", "USDT"): 400_000}
    balances.update({(v, c): 5 * strat.order_notional_krw / mids[c] for c in gen.coins for v in ("upbit", "binance")})
    return params, strat, risk, market, list(gen.coins), books, balances


@pytest.fixture(scope="module")
def synthetic():
    params, strat, risk, market, coins, books, balances = synthetic_setup("unwind")
    return Replay(books, lambda: Engine(coins, strat, risk, market, params.fx, dict(balances)))


# -- the attribute inventory -----------------------------------------------------------------------
def test_every_attribute_of_the_engine_pieces_is_either_state_or_configuration(synthetic):
    """A new attribute in engine.py or strategy.py must be exported or declared configuration here."""
    engine = synthetic.engine
    params, strat, risk, market, coins, _, balances = synthetic_setup("unwind")
    desk = PaperDesk(coins, strat, risk, market, params.fx, balances)
    shard = StrategyShard(coins, strat, market, params.fx)
    for name, obj, state, config in (
            ("Engine", engine, ENGINE_STATE, ENGINE_CONFIG),
            ("Portfolio", engine.portfolio, PORTFOLIO_STATE, PORTFOLIO_CONFIG),
            ("SymbolStrategy", next(iter(engine.strategies.values())), STRATEGY_STATE, STRATEGY_CONFIG),
            ("PaperDesk", desk, ENGINE_STATE | DESK_STATE, ENGINE_CONFIG | DESK_CONFIG),
            ("StrategyShard", shard, SHARD_STATE, SHARD_CONFIG)):
        held = set(vars(obj))
        assert not held - state - config, f"{name}: classify {held - state - config} in domain/state.py"
        assert not state - held, f"{name}: exported state {state - held} no longer exists"
    assert {f.name for f in fields(Trace)} == TRACE_FIELDS


def test_the_streams_reach_the_states_a_restart_must_survive(candles, candles_perp, synthetic):
    """The property tests below cut inside open positions, in-flight orders, leg risk and funding."""
    # 5-minute bars: an order (30 ms latency) always fills before the next bar, so in-flight cuts
    # come from the synthetic 1-second books
    assert len(candles.engine.round_trips()) >= 5 and candles.open
    led = candles_perp.engine.ledger
    assert led.funding != 0 and "BTC" in led.perps and candles_perp.engine.round_trips()
    pf = synthetic.engine.portfolio
    purposes = {o.purpose.value for o in pf.orders.values()}
    assert len(pf.round_trips) >= 30 and {"unwind", "complete"} <= purposes and pf.stuck_legs
    assert any(f.partial for f in synthetic.engine.trace.fills) and len(synthetic.in_flight) >= 10


# -- continuation: cut, snapshot, restore into a fresh engine, run the rest -----------------------
def check_cut(replay: Replay, cut: int) -> None:
    exported, again, resumed = replay.resumed(cut)
    assert again == exported
    assert resumed == replay.reference


@SLOW
@given(data=st.data())
def test_real_candles_resume_from_any_cut_to_the_uninterrupted_result(candles, data):
    cut = data.draw(st.one_of(st.integers(0, CANDLE_BOOKS), st.sampled_from(candles.open)))
    check_cut(candles, cut)


@SLOW
@given(data=st.data())
def test_perp_hedge_with_funding_resumes_exactly(candles_perp, data):
    cut = data.draw(st.one_of(st.integers(0, CANDLE_BOOKS), st.sampled_from(candles_perp.open)))
    check_cut(candles_perp, cut)


@SLOW
@given(data=st.data())
def test_synthetic_leg_risk_resumes_exactly_even_with_orders_in_flight(synthetic, data):
    cut = data.draw(st.one_of(st.integers(0, len(synthetic.books)), st.sampled_from(synthetic.in_flight)))
    check_cut(synthetic, cut)


def test_without_history_trading_resumes_exactly_and_the_history_after_the_cut_is_the_same(synthetic):
    """history=False drops decisions and the trace lists (the trade store keeps them): the snapshot
    shrinks, and the resumed run trades exactly like the uninterrupted one."""
    reference = synthetic.engine
    n = len(synthetic.in_flight)
    for cut in (synthetic.in_flight[n // 3], synthetic.in_flight[2 * n // 3], synthetic.in_flight[-1]):
        engine = synthetic.build()
        for book in synthetic.books[:cut]:
            engine.on_book(book)
        full, lean = export_engine(engine), through_store(export_engine(engine, history=False))
        if cut == synthetic.in_flight[-1]:
            assert len(canonical_json(lean)) < 0.6 * len(canonical_json(full))
        assert lean["trace"]["omitted"]["fills"] == len(engine.trace.fills)
        assert lean["portfolio"]["decisions"] == {"omitted": len(engine.portfolio.decisions)}
        before = {name: len(getattr(engine.trace, name)) for name in ("fills", "orders", "markers", "equity")}
        decided = len(engine.portfolio.decisions)
        resumed = synthetic.build()
        restore_engine(resumed, lean)
        for book in synthetic.books[cut:]:
            resumed.on_book(book)
        resumed.finish()
        trading = ("ledger", "risk", "orders", "positions", "round_trips", "failed_entries", "stuck_legs")
        got, want = export_engine(resumed), export_engine(reference)
        assert {k: got["portfolio"][k] for k in trading} == {k: want["portfolio"][k] for k in trading}
        assert got["strategies"] == want["strategies"] and got["pending"] == want["pending"]
        assert got["portfolio"]["decisions"] == want["portfolio"]["decisions"][decided:]
        for name, n in before.items():
            assert got["trace"][name] == want["trace"][name][n:], name


def test_maps_summed_in_order_keep_their_order_through_a_store_that_sorts_keys(candles_perp, synthetic):
    """Float sums run over position coin maps and ledger maps: a restore must iterate them as before."""
    for replay, cut in ((candles_perp, candles_perp.open[len(candles_perp.open) // 2]),
                        (synthetic, synthetic.in_flight[-1])):
        engine = replay.build()
        for book in replay.books[:cut]:
            engine.on_book(book)
        restored = replay.build()
        restore_engine(restored, through_store(export_engine(engine)))
        for pid, pos in engine.portfolio.positions.items():
            assert list(restored.portfolio.positions[pid].coin) == list(pos.coin), pid
        assert list(restored.portfolio.positions) == list(engine.portfolio.positions)
        for name in ("balances", "fees", "perps"):
            assert list(getattr(restored.ledger, name)) == list(getattr(engine.ledger, name)), name
        assert list(restored.trace.premium) == list(engine.trace.premium)
        assert list(restored.books) == list(engine.books) and list(restored.strategies) == list(engine.strategies)
    assert any(list(p.coin) != sorted(p.coin) for p in candles_perp.engine.portfolio.positions.values())


def test_only_the_books_in_flight_orders_need_are_kept_when_feeds_will_resend(synthetic):
    cut = synthetic.in_flight[len(synthetic.in_flight) // 2]
    engine = synthetic.build()
    for book in synthetic.books[:cut]:
        engine.on_book(book)
    symbols = {order.symbol for _, _, order in engine.pending}
    doc = export_engine(engine, all_books=False)
    kept = {(b["venue"], b["symbol"]) for b in doc["books"]}
    assert kept == {("upbit", "USDT")} | {(v, s) for s in symbols for v in ("upbit", "binance")}
    resumed = synthetic.build()
    restore_engine(resumed, doc)
    in_flight = {order.order_id for _, _, order in resumed.pending}
    for book in synthetic.books[cut:]:
        resumed.on_book(book)
    resumed.finish()
    filled = {f.order_id for f in resumed.trace.fills}
    assert in_flight and in_flight <= filled and not resumed.pending


# -- the paper desk and the strategy shard (the pieces the actors hold) ---------------------------
def run_paper_pieces(books, build, cut: int | None):
    """Desk + shard fed one instant at a time; at instant `cut` both are snapshotted (news still
    undelivered) and replaced by fresh ones restored from the snapshots."""
    desk, shard = build()
    instants = [list(g) for _, g in itertools.groupby(books, key=lambda b: b.ts_ms)]
    for i, instant in enumerate(instants):
        desk.on_books(instant)
        for intent in shard.on_books(instant):
            desk.submit(intent)
        if i == cut:
            desk_doc, shard_doc = through_store(export_engine(desk)), through_store(export_shard(shard))
            desk, shard = build()
            restore_engine(desk, desk_doc, news_type=News)
            restore_shard(shard, shard_doc)
            assert canonical_json(export_engine(desk)) == canonical_json(desk_doc)
            assert canonical_json(export_shard(shard)) == canonical_json(shard_doc)
        for news in desk.take_news():
            if (intent := shard.on_news(news.symbol, news.kind, news.ts_ms, news.view)) is not None:
                desk.submit(intent)
    desk.finish()
    return outcome(desk), canonical_json(export_shard(shard)), len(instants)


@pytest.fixture(scope="module")
def paper_pieces():
    params, strat, risk, market, coins, books, balances = synthetic_setup("unwind")

    def build():
        return (PaperDesk(coins, strat, risk, market, params.fx, dict(balances)),
                StrategyShard(coins, strat, market, params.fx))
    return books, build, run_paper_pieces(books, build, None)


@SLOW
@given(data=st.data())
def test_paper_desk_and_shard_resume_with_undelivered_news(paper_pieces, data):
    books, build, reference = paper_pieces
    cut = data.draw(st.integers(0, reference[2] - 1))
    assert run_paper_pieces(books, build, cut)[:2] == reference[:2]


def test_a_desk_snapshot_with_news_needs_the_news_type(paper_pieces):
    books, build, _ = paper_pieces
    desk, _ = build()
    desk.news.append(News("X", "rejected", 1))
    with pytest.raises(StateError, match="1 undelivered news items need news_type"):
        restore_engine(build()[0], export_engine(desk))


# -- exactness of the pieces on generated values --------------------------------------------------
decimals = st.decimals(allow_nan=False, allow_infinity=False, places=8, min_value=-10**12, max_value=10**12)
names = st.text("ABCXYZ", min_size=1, max_size=4)


@QUICK
@given(balances=st.dictionaries(st.tuples(st.sampled_from(["upbit", "binance", "binance_usdm"]), names), decimals,
                                max_size=8),
       perps=st.dictionaries(names, st.tuples(decimals, decimals), max_size=3),
       seen=st.sets(st.text(min_size=1, max_size=12), max_size=10), funding=decimals)
def test_ledger_state_is_exact_to_the_digit_and_keeps_its_order(balances, perps, seen, funding):
    led = Ledger({})
    led.balances = dict(balances)            # exact Decimals as given: 0E-8, 1E+3 and trailing zeros included
    led.fees = {k: abs(v) for k, v in reversed(balances.items())}
    led.perps = {coin: PerpPosition(qty, cost) for coin, (qty, cost) in perps.items()}
    led.funding, led._seen = funding, set(seen)
    doc = json.loads(canonical_json(led.to_dict()))     # as a snapshot store writes it: keys sorted
    again = Ledger.from_dict(doc)
    assert again.to_dict() == doc
    for name in ("balances", "fees", "perps"):
        assert list(getattr(again, name)) == list(getattr(led, name)), name
    assert all(str(again.balances[k]) == str(v) for k, v in led.balances.items())


@QUICK
@given(losses=st.dictionaries(names, st.integers(0, 10)), paused=st.dictionaries(names, st.integers(0, 2**50)),
       routes=st.dictionaries(names, st.lists(st.integers(0, 2**50), max_size=5)),
       daily=st.dictionaries(st.integers(0, 30_000), st.floats(allow_nan=False, allow_infinity=False)),
       degraded=st.sets(st.sampled_from(["upbit", "binance"])), frozen=st.text(max_size=10),
       triggers=st.dictionaries(names, st.integers(0, 100)))
def test_risk_state_round_trips_exactly(losses, paused, routes, daily, degraded, frozen, triggers):
    risk = RiskState(losses, paused, {k: deque(v) for k, v in routes.items()}, daily, degraded, frozen, triggers)
    doc = json.loads(json.dumps(risk.to_dict()))
    assert RiskState.from_dict(doc).to_dict() == doc == risk.to_dict()


def test_non_finite_floats_survive_as_tags(synthetic):
    """An order priced off an empty book side carries inf: JSON cannot, so it is tagged and comes back."""
    engine = synthetic.build()
    for book in synthetic.books[:200]:
        engine.on_book(book)
    order = next(iter(engine.portfolio.orders.values()))
    engine.portfolio.orders[order.order_id] = replace(order, ref_price=float("inf"))
    doc = through_store(export_portfolio(engine.portfolio))
    assert {"$float": "inf"} in [o["ref_price"] for o in doc["orders"]]
    fresh = synthetic.build().portfolio
    restore_portfolio(fresh, doc)
    assert fresh.orders[order.order_id].ref_price == float("inf")


# -- bad input -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def snapshot(synthetic):
    cut = synthetic.open[len(synthetic.open) // 2]
    engine = synthetic.build()
    for book in synthetic.books[:cut]:
        engine.on_book(book)
    return json.loads(canonical_json(export_engine(engine)))


def damaged(doc: dict, change) -> dict:
    copy = json.loads(json.dumps(doc))
    change(copy)
    return copy


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(kind="portfolio"), "engine state: document is of kind 'portfolio'"),
    (lambda d: d.update(schema=99), "engine state: schema 99 is not the supported 2"),
    (lambda d: d.update(hedge="perp"), "taken with hedge 'perp', this engine uses 'inventory'"),
    (lambda d: d.update(symbols=["BTC"]), r"snapshot holds symbols \['BTC'\]"),
    (lambda d: d["pending"].append([1, 1, "nope-entry-upbit-1"]), r"engine.pending\[\d+\]: in-flight order nope"),
    (lambda d: d["portfolio"]["positions"][0].update(krw_delta="12,5"),
     r"portfolio.positions\[0\] \(.+-p1\): malformed \(InvalidOperation"),
    (lambda d: d["portfolio"]["positions"][0]["open_orders"].append("ghost"), "open orders \\['ghost'\\] are not in"),
    (lambda d: d["portfolio"]["orders"][0].pop("side"), r"portfolio.orders\[0\]: malformed \(TypeError"),
    (lambda d: d["portfolio"]["orders"][0].update(side="hold"), r"portfolio.orders\[0\]: malformed \(ValueError: 'hold'"),
    (lambda d: d["strategies"][0].update(window=[0.0] * 10_000), "window holds 10000 samples but this strategy keeps"),
    (lambda d: d["portfolio"]["ledger"].pop("seen"), r"portfolio.ledger: malformed \(KeyError: 'seen'"),
    (lambda d: d.pop("trace"), r"engine state: missing \['trace'\]"),
    (lambda d: d["trace"].pop("fills"), r"engine.trace: malformed \(KeyError: 'fills'"),
])
def test_a_damaged_document_is_refused_naming_what_and_where(synthetic, snapshot, change, message):
    with pytest.raises(StateError, match=message):
        restore_engine(synthetic.build(), damaged(snapshot, change))


def test_documents_of_the_wrong_kind_or_shape_are_refused(synthetic, snapshot):
    with pytest.raises(StateError, match="portfolio state: document is of kind 'engine'"):
        restore_portfolio(synthetic.build().portfolio, snapshot)
    with pytest.raises(StateError, match="strategies state: expected a JSON object, got list"):
        restore_strategies(synthetic.build().strategies, [])
    doc = export_strategies(synthetic.build().strategies)
    with pytest.raises(StateError, match=r"snapshot holds symbols \[.+\], this process runs \['ZZZ'\]"):
        restore_strategies({"ZZZ": None}, doc)


def test_strategies_alone_round_trip_mid_run(synthetic, snapshot):
    """A host of strategies without an engine (one symbol per actor) snapshots just them."""
    engine = synthetic.build()
    restore_engine(engine, snapshot)
    doc = through_store(export_strategies(engine.strategies))
    fresh = synthetic.build().strategies
    restore_strategies(fresh, doc)
    assert export_strategies(fresh) == doc and doc["strategies"] == snapshot["strategies"]
    assert any(s["position"] for s in doc["strategies"]) and all(len(s["window"]) for s in doc["strategies"])
