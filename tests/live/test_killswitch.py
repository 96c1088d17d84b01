"""Kill switch against the simulator, with venues failing half the time or all the time."""
from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest

from domain.orders import Side
from domain.venues import Venue
from live.backoff import Backoff
from live.killswitch import Exposure, KillSwitch
from tests.live.sim_venues import live_venue
from tests.sim.support import KEY, running_sim, step_venue

VENUES = (Venue.UPBIT, Venue.BINANCE, Venue.BINANCE_USDM)
QUICK = Backoff(base_s=0.01, factor=2.0, cap_s=0.05, attempts=1_000)
SPOT_EXPOSURE = (Exposure(Venue.UPBIT, "BTC", -0.01), Exposure(Venue.BINANCE, "BTC", 0.01))


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


@asynccontextmanager
async def armed(data: Path):
    """Every venue with a resting order, a USDT-M short open, and its books published."""
    async with running_sim(data) as sim, AsyncExitStack() as stack:
        lvs = {v: await stack.enter_async_context(live_venue(sim, v)) for v in VENUES}
        for venue, lv in lvs.items():
            book = step_venue(sim, venue.value)
            await lv.exchange.create_order(lv.symbol("BTC"), "limit", "buy", 0.01, book.bids[-1][0])
        await lvs[Venue.BINANCE_USDM].exchange.create_order("BTC/USDT:USDT", "market", "sell", 0.01)
        yield sim, lvs


def kill_orders(sim, venue: str) -> list:
    return [o for o in sim.engine.orders_of(venue, KEY) if "kill" in (o.request.client_id or "")]


def test_cancels_and_flattens_while_every_venue_fails_half_the_time(data: Path) -> None:
    async def scenario() -> None:
        async with armed(data) as (sim, lvs):
            await sim.fault({"kind": "http_error", "venue": "upbit", "status": 503, "fraction": 0.5})
            await sim.fault({"kind": "http_error", "venue": "binance", "status": 502, "fraction": 0.5, "after": True})
            await sim.fault({"kind": "http_error", "venue": "binance_usdm", "status": 500, "fraction": 0.5})
            report = await KillSwitch(lvs, "flatten", QUICK, deadline_s=60).engage("test: chaos", SPOT_EXPOSURE)
            assert report.ok, report
            assert len(report.cancelled) == 3 and len(report.closed) == 3
            faults = sim.journal("fault")
            assert {f["venue"] for f in faults} == {"upbit", "binance", "binance_usdm"} and len(faults) > 10
            await sim.fault({"kind": "clear"})
            for lv in lvs.values():
                assert await lv.open_orders() == []
            assert await lvs[Venue.BINANCE_USDM].positions() == {}
            # each exposure traded back exactly once, replies lost or not
            for venue, side in (("upbit", "buy"), ("binance", "sell"), ("binance_usdm", "buy")):
                orders = kill_orders(sim, venue)
                assert {o.request.side for o in orders} == {side}
                assert sum(o.filled_qty for o in orders) == pytest.approx(0.01)
            assert all(o.request.reduce_only for o in kill_orders(sim, "binance_usdm"))
            # the report carries what each close executed, as the venue reported it
            for venue, side, quote in ((Venue.UPBIT, Side.BUY, "KRW"), (Venue.BINANCE, Side.SELL, "USDT"),
                                       (Venue.BINANCE_USDM, Side.BUY, "USDT")):
                fills = [f for f in report.fills if f.venue is venue]
                assert fills and {(f.coin, f.side, f.fee_currency) for f in fills} == {("BTC", side, quote)}
                assert sum(f.filled for f in fills) == pytest.approx(0.01)
                assert all(f.average > 0 and f.fee > 0 and f.ref_price > 0 for f in fills)
                sent = {o.request.client_id: o for o in kill_orders(sim, venue.value) if o.filled_qty}
                assert sorted(lvs[venue].client_id(f.order_id) for f in fills) == sorted(sent)
            assert json.loads(json.dumps(report.to_dict()))["fills"][0]["venue"] in ("upbit", "binance", "binance_usdm")
            stats = {v.value: lv.stats for v, lv in lvs.items()}
            assert all(s.failures > 0 and s.retries > 0 for s in stats.values()), stats
    run(scenario())


def test_a_venue_that_stays_down_is_reported_not_hidden(data: Path) -> None:
    async def scenario() -> None:
        async with armed(data) as (sim, lvs):
            await sim.fault({"kind": "http_error", "venue": "upbit", "status": 503, "fraction": 1.0})
            report = await KillSwitch(lvs, "flatten", QUICK, deadline_s=2).engage("test: outage", SPOT_EXPOSURE)
            assert not report.ok
            assert [c.split()[0] for c in report.cancelled] == ["binance", "binance_usdm"] or \
                sorted(c.split()[0] for c in report.cancelled) == ["binance", "binance_usdm"]
            assert len(report.not_cancelled) == 1 and report.not_cancelled[0].startswith("upbit: open orders could not")
            assert len(report.not_closed) == 1 and report.not_closed[0].startswith("upbit BTC -0.01: 0.01 left")
            assert sorted(c.split()[0] for c in report.closed) == ["binance", "binance_usdm"]
            assert report.duration_ms < 10_000
            await sim.fault({"kind": "clear"})
            assert len(await lvs[Venue.UPBIT].open_orders()) == 1, "the resting Upbit order is still there"
    run(scenario())


def test_freeze_cancels_orders_and_leaves_positions_reported(data: Path) -> None:
    async def scenario() -> None:
        async with armed(data) as (sim, lvs):
            report = await KillSwitch(lvs, "freeze", QUICK).engage("test: freeze", SPOT_EXPOSURE)
            assert report.ok and len(report.cancelled) == 3 and report.closed == ()
            assert report.frozen == ("upbit BTC -0.01", "binance BTC +0.01", "binance_usdm BTC -0.01")
            assert await lvs[Venue.BINANCE_USDM].positions() == {"BTC": pytest.approx(-0.01)}
            assert all(kill_orders(sim, v.value) == [] for v in VENUES)
            assert report.to_dict()["policy"] == "freeze"
    run(scenario())


def test_two_exposures_of_one_coin_are_closed_as_one(data: Path) -> None:
    """Close ids are per venue and coin: two closes of one coin would share one and trade once."""
    async def scenario() -> None:
        async with armed(data) as (sim, lvs):
            two = [Exposure(Venue.UPBIT, "BTC", -0.004), Exposure(Venue.UPBIT, "BTC", -0.006)]
            report = await KillSwitch(lvs, "flatten", QUICK).engage("test: two positions", two)
            assert report.ok and [c for c in report.closed if c.startswith("upbit")] == ["upbit BTC -0.01: buy 0.01"]
            assert sum(o.filled_qty for o in kill_orders(sim, "upbit")) == pytest.approx(0.01)
            assert sum(f.filled for f in report.fills if f.venue is Venue.UPBIT) == pytest.approx(0.01)
    run(scenario())


def test_dust_below_the_minimum_is_reported_as_not_closed(data: Path) -> None:
    async def scenario() -> None:
        async with armed(data) as (sim, lvs):
            report = await KillSwitch(lvs, "flatten", QUICK).engage(
                "test: dust", [Exposure(Venue.BINANCE, "BTC", 0.00002)])
            assert any(n.startswith("binance BTC +2e-05") and "below the minimum" in n for n in report.not_closed)
            assert not report.ok
    run(scenario())


def test_bad_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="policy 'sell-all' unknown"):
        KillSwitch({Venue.UPBIT: object()}, "sell-all")
