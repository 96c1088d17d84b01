"""LiveDesk against the simulator: the paper desk's guards and ledger, with real signed orders."""
from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest

from config.schema import DomainParams
from domain.orders import Direction, OrderIntent, Purpose, Side
from domain.params import FxParams, Market, RiskLimits, StrategyParams
from domain.venues import Venue
from live.backoff import Backoff
from live.desk import LiveDesk
from live.killswitch import KillSwitch
from live.venue import protective_price
from tests.live.sim_venues import SIM_RULES, live_venue
from tests.sim.support import KEY, running_sim, step_venue

FX = 1383.7


def params(hedge: str = "inventory", policy: str = "unwind", **risk) -> DomainParams:
    return DomainParams(StrategyParams(hedge=hedge), RiskLimits(**risk), FxParams("fixed", FX),
                        Market(dict(SIM_RULES), leg_risk_policy=policy))


@asynccontextmanager
async def desk_on(sim, hedge: str = "inventory", **kw):
    venues = (Venue.UPBIT, Venue.BINANCE_USDM if hedge == "perp" else Venue.BINANCE)
    async with AsyncExitStack() as stack:
        lvs = {v: await stack.enter_async_context(live_venue(sim, v)) for v in venues}
        books = [step_venue(sim, v.value) for v in venues]
        desk = await LiveDesk.open(["BTC"], params(hedge, **kw.pop("p", {})), lvs, **kw)
        desk.on_books(books)
        yield desk


def intent(desk, purpose=Purpose.ENTRY, direction=Direction.RICH, qty=0.01, pid="BTC-p1") -> OrderIntent:
    return OrderIntent(f"{pid}-{purpose.value}", "BTC", desk.now, purpose, direction, qty, 0.002, "test", pid)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def new_orders(sim) -> list[dict]:
    return [e for e in sim.journal("order") if e["event"] == "new"]


def test_protective_price_stays_on_tick_and_beyond_the_reference() -> None:
    upbit = SIM_RULES[Venue.UPBIT]
    assert protective_price(upbit, 159_500_000, Side.BUY, 50) == 160_297_000
    assert protective_price(upbit, 159_500_000, Side.SELL, 50) == 158_703_000
    # a band narrower than the tick: the reference rounded outward, never inside it
    assert protective_price(upbit, 159_500_500, Side.BUY, 0.01) == 159_501_000
    assert protective_price(SIM_RULES[Venue.BINANCE], 115_279.255, Side.SELL, 0.1) == 115_278.11
    assert protective_price(SIM_RULES[Venue.BINANCE], 115_279.255, Side.SELL, 0.001) == 115_279.25


def test_entry_and_exit_trade_both_venues_and_close_a_round_trip_that_reconciles(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, desk_on(sim) as desk:
            await desk.submit(intent(desk))
            news = desk.take_news()
            assert [n.kind for n in news] == ["opened"] and news[0].view.qty == pytest.approx(0.01)
            sides = [(e["venue"], e["side"], e["tif"]) for e in new_orders(sim)]
            assert sides == [("upbit", "sell", "IOC"), ("binance", "buy", "IOC")]
            await desk.submit(intent(desk, Purpose.EXIT))
            assert [n.kind for n in desk.take_news()] == ["closed"]
            (rt,) = desk.portfolio.round_trips
            assert rt.exit_reason == "test" and rt.fees_krw > 0 and rt.qty == pytest.approx(0.01)
            assert len(new_orders(sim)) == 4 and len(desk.trace.fills) == 4
            report = await desk.reconcile()
            assert report.ok, report   # ledger (plus Binance's coin-paid fee) equals the venues to the unit
            assert desk.fee_shift[("binance", "BTC")] < 0, "Binance spot took its buy fee in BTC"
    run(scenario())


def test_a_rejected_leg_is_unwound_with_a_real_order(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, desk_on(sim) as desk:
            sim.engine.fund("binance", KEY, "USDT", -1_999_990.0)   # the venue now refuses the Binance buy
            await desk.submit(intent(desk))
            orders = new_orders(sim)
            assert [(e["venue"], e["side"]) for e in orders] == [("upbit", "sell"), ("upbit", "buy")], \
                "Upbit sold, Binance refused, the unwind bought the coin back on Upbit"
            assert [e["reason"] for e in sim.journal("reject")] == ["insufficient"]
            assert [n.kind for n in desk.take_news()] == ["closed"]
            (rt,) = desk.portfolio.round_trips
            assert rt.exit_reason == "failed_entry" and rt.leg_risk_krw > 0 and rt.pnl_krw < 0
            assert desk.portfolio.positions["BTC-p1"].state == "failed"
            assert any("refused" in a and "InsufficientFunds" in a for a in desk.trace.alerts)
            report = await desk.reconcile()
            assert [(d.venue, d.what) for d in report.drifts] == [("binance", "USDT")], \
                "only the withdrawal made outside the desk shows as drift"
            assert report.drifts[0].delta == pytest.approx(-1_999_990.0)
    run(scenario())


def test_complete_policy_retries_the_missing_leg_then_unwinds(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, desk_on(sim, p={"policy": "complete"}) as desk:
            sim.engine.fund("binance", KEY, "USDT", -1_999_990.0)
            await desk.submit(intent(desk))
            # Binance refused the entry buy and its completion; the second attempt unwinds on Upbit
            assert [e["reason"] for e in sim.journal("reject")] == ["insufficient", "insufficient"]
            assert [(e["venue"], e["side"]) for e in new_orders(sim)] == [("upbit", "sell"), ("upbit", "buy")]
            purposes = [o.purpose for o in desk.trace.orders]
            assert purposes == [Purpose.ENTRY, Purpose.ENTRY, Purpose.COMPLETE, Purpose.UNWIND]
            assert desk.portfolio.positions["BTC-p1"].state == "failed"
    run(scenario())


def test_guards_block_before_any_order_and_record_the_guard(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, desk_on(sim) as desk:
            desk.portfolio.risk.degraded_venues.add("binance")
            await desk.submit(intent(desk, pid="BTC-p1"))
            desk.portfolio.risk.degraded_venues.clear()
            desk.portfolio.risk.frozen = "kill switch: test"
            await desk.submit(intent(desk, pid="BTC-p2"))
            assert [(d.guard, d.tier) for d in desk.portfolio.decisions] == [
                ("venue_degraded", "venue"), ("kill_switch", "global")]
            assert [n.kind for n in desk.take_news()] == ["rejected", "rejected"]
            assert sim.journal("order") == []
    run(scenario())


def test_perp_hedge_goes_long_then_exits_reduce_only_and_books_funding(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, desk_on(sim, hedge="perp") as desk:
            await desk.submit(intent(desk))
            assert await desk.venues[Venue.BINANCE_USDM].positions() == {"BTC": pytest.approx(0.01)}
            assert await desk.book_funding() == 1 and await desk.book_funding() == 0, "once per period"
            assert desk.ledger.funding < 0, "a long pays a positive rate"
            await desk.submit(intent(desk, Purpose.EXIT))
            exits = [o.request for o in sim.engine.orders_of("binance_usdm", KEY)]
            assert [(r.side, r.reduce_only) for r in exits] == [("buy", False), ("sell", True)]
            assert await desk.venues[Venue.BINANCE_USDM].positions() == {}
            report = await desk.reconcile()
            # the simulator settles no funding: the booked payment is the only difference
            assert [(d.venue, d.what) for d in report.drifts] == [("binance_usdm", "USDT")]
            assert report.drifts[0].delta == pytest.approx(-float(desk.ledger.funding))
    run(scenario())


def test_an_order_lost_in_an_outage_is_settled_by_reconcile_not_resent(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, desk_on(sim) as desk:
            await sim.fault({"kind": "http_error", "venue": "binance", "status": 503, "fraction": 1.0,
                             "after": True})
            await desk.submit(intent(desk))
            assert list(desk.unresolved) == ["BTC-p1-entry-binance-2"]
            assert "binance" in desk.portfolio.risk.degraded_venues
            assert desk.portfolio.positions["BTC-p1"].state == "opening", "waits for the venue's word"
            await sim.fault({"kind": "clear", "venue": "binance"})
            report = await desk.reconcile()
            assert report.booked == ("BTC-p1-entry-binance-2",) and report.ok, report
            assert desk.portfolio.risk.degraded_venues == set(), "the venue answered: no longer degraded"
            assert [n.kind for n in desk.take_news()] == ["opened"]
            assert len([e for e in new_orders(sim) if e["venue"] == "binance"]) == 1, "placed once, never resent"
    run(scenario())


def test_a_stuck_leg_engages_the_kill_switch_by_itself(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, desk_on(sim) as desk:
            desk.kill_switch = KillSwitch(desk.venues, "flatten", Backoff(0.01, 2.0, 0.05, 1000), deadline_s=5)
            sim.engine.fund("binance", KEY, "USDT", -1_999_990.0)   # the Binance buy is refused
            sim.engine.fund("upbit", KEY, "KRW", -99_999_000.0)     # and so is every Upbit buy back
            await desk.submit(intent(desk))
            assert desk.portfolio.stuck_legs == ["BTC-p1"]
            assert desk.portfolio.risk.frozen == "stuck leg BTC-p1"
            (report,) = desk.kill_reports
            assert not report.ok and report.not_closed[0].startswith("upbit BTC -0.01")
            assert "InsufficientFunds" in report.not_closed[0]
            assert any(a.startswith("kill switch (flatten) for stuck leg") for a in desk.trace.alerts)
            await desk.submit(intent(desk, pid="BTC-p2"))
            assert desk.portfolio.decisions[-1].guard == "kill_switch"
    run(scenario())


@pytest.mark.parametrize("hedge", ["inventory", "perp"])
def test_a_flatten_is_booked_closing_the_positions_with_no_drift(data: Path, hedge: str) -> None:
    """Kill switch flatten while the venues drop half their replies: the closes land in the ledger and
    the positions, each position closes as kill_switch, and the venues agree with the books."""
    async def scenario() -> None:
        async with running_sim(data) as sim, desk_on(sim, hedge) as desk:
            desk.kill_switch = KillSwitch(desk.venues, "flatten", Backoff(0.01, 2.0, 0.05, 1000), deadline_s=60)
            await desk.submit(intent(desk, qty=0.004, pid="BTC-p1"))
            await desk.submit(intent(desk, qty=0.004, pid="BTC-p2"))
            desk.take_news()
            assert len(desk.portfolio.open_positions()) == 2
            for venue in ("upbit", desk.bn_venue):
                await sim.fault({"kind": "http_error", "venue": venue, "status": 503, "fraction": 0.5, "after": True})
            report = await desk.kill("test: flatten")
            await sim.fault({"kind": "clear"})
            assert report.ok, report
            assert sim.journal("fault"), "replies were lost on the way"
            assert {f.venue.value for f in report.fills} == {"upbit", desk.bn_venue}
            assert desk.portfolio.open_positions() == [] and desk.open_exposure() == []
            rts = desk.portfolio.round_trips
            assert sorted(rt.position_id for rt in rts) == ["BTC-p1", "BTC-p2"]
            assert {rt.exit_reason for rt in rts} == {"kill_switch"} and all(rt.fees_krw > 0 for rt in rts)
            assert [n.kind for n in desk.take_news()] == ["closed", "closed"], "the strategy hears it is flat"
            kill_fees = {(f.venue.value, f.fee_currency) for f in report.fills}
            assert all(desk.ledger.fees[key] > 0 for key in kill_fees)
            booked = [f for f in desk.trace.fills if f.order_id.startswith("kill-")]
            assert len(booked) == len(report.fills)
            recon = await desk.reconcile()
            assert recon.ok, recon      # the ledger (with coin-paid fees) equals every venue balance
            if hedge == "perp":
                assert await desk.venues[Venue.BINANCE_USDM].positions() == {}
                assert desk.ledger.perps["BTC"].qty == 0
            else:
                assert float(desk.ledger.balance("upbit", "BTC")) == pytest.approx(1.0)
    run(scenario())


def test_the_daily_loss_breach_engages_the_kill_switch_and_freezes(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, desk_on(sim) as desk:
            desk.kill_switch = KillSwitch(desk.venues, "freeze", Backoff(0.01, 2.0, 0.05, 1000))
            resting = await desk.venues[Venue.UPBIT].exchange.create_order("BTC/KRW", "limit", "buy", 0.01, 100_000_000)
            desk.portfolio.risk.daily_pnl[desk.now // 86_400_000] = -10_000_000.0
            await desk.submit(intent(desk))
            assert desk.portfolio.decisions[-1].guard == "daily_loss"
            (report,) = desk.kill_reports
            assert report.ok and report.policy == "freeze" and report.reason == "daily loss limit reached"
            assert report.cancelled == (f"upbit {resting['id']} BTC buy 0.01",)
            assert sim.journal("order")[-1]["event"] == "canceled"
    run(scenario())


def test_armed_caps_shrink_an_entry_and_refuse_one_past_the_total(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, desk_on(sim, max_order_krw=500_000.0, max_total_krw=800_000.0) as desk:
            await desk.submit(intent(desk, qty=0.01, pid="BTC-p1"))        # ~1.6M KRW asked, 500k allowed
            sells = [e for e in new_orders(sim) if e["venue"] == "upbit"]
            assert len(sells) == 1 and sells[0]["qty"] * desk.books[("upbit", "BTC")].best_ask <= 500_000
            await desk.submit(intent(desk, qty=0.01, pid="BTC-p2"))        # 500k more would pass 800k in all
            assert len(new_orders(sim)) == 2 and desk.take_news()[-1].kind == "rejected"
            assert "would pass the total cap 800,000 KRW" in desk.trace.alerts[-1]
    run(scenario())


def test_the_per_order_cap_sizes_on_the_dearer_leg(data: Path) -> None:
    """Binance 2% dearer than Upbit in KRW: sized on Upbit's price alone, its leg would break the cap."""
    from dataclasses import replace as copy

    async def scenario() -> None:
        async with running_sim(data) as sim, desk_on(sim, max_order_krw=500_000.0) as desk:
            held = desk.books[("binance", "BTC")]
            dear = copy(held, ts_ms=held.ts_ms + 1, bids=tuple((round(p * 1.02, 2), q) for p, q in held.bids),
                        asks=tuple((round(p * 1.02, 2), q) for p, q in held.asks))
            sim.publish(dear)
            desk.on_books([dear])
            await desk.submit(intent(desk, qty=0.01))
            legs = {e["venue"]: e for e in new_orders(sim)}
            assert set(legs) == {"upbit", "binance"}, desk.trace.alerts
            assert legs["binance"]["qty"] * dear.best_ask * FX <= 500_000
            assert [n.kind for n in desk.take_news()] == ["opened"]
    run(scenario())


def test_each_guard_tier_blocks_a_live_entry_and_records_its_guard(data: Path) -> None:
    """The live desk asks the domain guards exactly as paper does: one blocked intent per tier."""
    from collections import deque

    async def scenario() -> None:
        async with running_sim(data) as sim, desk_on(sim) as first:
            venues, books = first.venues, list(first.books.values())
            cases = [({}, lambda d: d.portfolio.risk.paused_until.__setitem__("BTC", d.now + 60_000),
                      ("consecutive_losses", "symbol")),
                     ({"max_route_trades_per_hour": 1}, lambda d: d.portfolio.risk.route_trades.__setitem__(
                         "BTC", deque([d.now - 1_000])), ("route_frequency", "route")),
                     ({"max_venue_exposure_krw": 1_000.0}, lambda d: None, ("venue_exposure", "venue")),
                     ({"max_inventory_imbalance": 0.5}, lambda d: None, ("inventory_imbalance", "global"))]
            for limits, arrange, expected in cases:
                desk = await LiveDesk.open(["BTC"], params(**limits), venues)
                desk.on_books(books)
                arrange(desk)
                await desk.submit(intent(desk))
                (decision,) = desk.portfolio.decisions
                assert (decision.guard, decision.tier, decision.allowed) == (*expected, False)
                assert desk.portfolio.risk.triggers == {expected[0]: 1}
            assert sim.journal("order") == [], "no guard let an order through"
    run(scenario())
