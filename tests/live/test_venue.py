"""LiveVenue with real ccxt against the simulator: orders, fees, rules, 429 backoff, idempotent retries."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from domain.orders import Side
from domain.venues import Venue
from live.errors import OrderRejected, OrderRuleError, VenueUnavailable
from live.venue import PlaceRequest, check_order_rules, client_order_id
from live.exchanges import open_exchange
from live.order_stream import OrderStream
from tests.live.sim_venues import SIM_RULES, live_venue, sim_keys
from tests.sim.support import KEY, running_sim, step_venue

VENUES = (Venue.UPBIT, Venue.BINANCE, Venue.BINANCE_USDM)
FEE = {Venue.UPBIT: 0.0005, Venue.BINANCE: 0.001, Venue.BINANCE_USDM: 0.0005}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def poll_until(check, timeout_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)


def crossing(venue: Venue, book, side: Side) -> float:
    """A limit price two levels into the book, on the venue's tick: fills like a capped market order."""
    rules = SIM_RULES[venue]
    raw = book.asks[1][0] * 1.0005 if side is Side.BUY else book.bids[1][0] * 0.9995
    return rules.round_price(raw, side.value)


def vwap(levels, qty: float, limit: float, side: Side) -> tuple[float, float]:
    left, cost, got = qty, 0.0, 0.0
    for price, size in levels:
        if (price > limit) if side is Side.BUY else (price < limit):
            break
        take = min(size, left)
        cost, got, left = cost + take * price, got + take, left - take
        if left <= 1e-12:
            break
    return got, cost / got


@pytest.mark.parametrize("venue", VENUES)
@pytest.mark.parametrize("side", (Side.BUY, Side.SELL))
def test_limit_ioc_fills_with_vwap_and_fee_in_quote(data: Path, venue: Venue, side: Side) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, live_venue(sim, venue) as lv:
            book = step_venue(sim, venue.value)
            price = crossing(venue, book, side)
            qty = 0.012
            order = await lv.place(PlaceRequest("BTC-p1-entry-1", "BTC", side, qty, price))
            got, avg = vwap(book.asks if side is Side.BUY else book.bids, qty, price, side)
            assert order.final and order.filled == pytest.approx(got) and order.average == pytest.approx(avg)
            assert order.fee_quote == pytest.approx(got * avg * FEE[venue], rel=1e-6)
            coin_fee = venue is Venue.BINANCE and side is Side.BUY   # Binance spot buys pay in the coin
            assert order.fee_coin == pytest.approx(got * FEE[venue] if coin_fee else 0.0)
            assert order.client_id == client_order_id("test-run", "BTC-p1-entry-1")
            assert [e["client_id"] for e in sim.journal("order") if e["event"] == "new"] == [order.client_id]
            assert lv.stats.orders_sent == 1 and lv.stats.rate_limited == 0
    run(scenario())


@pytest.mark.parametrize("venue", VENUES)
def test_market_orders_fill_on_every_venue(data: Path, venue: Venue) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, live_venue(sim, venue) as lv:
            book = step_venue(sim, venue.value)
            sell = await lv.place(PlaceRequest("m-sell", "BTC", Side.SELL, 0.01, book.bids[0][0], kind="market"))
            assert sell.status == "closed" and sell.filled == pytest.approx(0.01)
            buy = await lv.place(PlaceRequest("m-buy", "BTC", Side.BUY, 0.01, book.asks[0][0], kind="market"))
            if venue is Venue.UPBIT:   # Upbit buys at market by funds: qty x the reference price of KRW
                assert buy.filled * buy.average == pytest.approx(0.01 * book.asks[0][0], rel=1e-6)
            else:
                assert buy.filled == pytest.approx(0.01)
            assert buy.fee_quote > 0 and buy.average >= book.asks[0][0]
    run(scenario())


@pytest.mark.parametrize("venue,qty,price,message", [
    (Venue.BINANCE, 0.000015, 100_000.0, "not a multiple of the lot size 1e-05"),
    (Venue.BINANCE, 0.001, 100_000.005, "not on the tick 0.01"),
    (Venue.BINANCE, 0.00004, 100_000.0, "below the minimum 5 USDT"),
    (Venue.BINANCE_USDM, 0.0005, 100_000.0, "not a multiple of the lot size 0.001"),
    (Venue.BINANCE_USDM, 0.001, 90_000.0, "notional 90 is below the minimum 100 USDT"),
    (Venue.UPBIT, 0.01, 159_000_500.0, "not on the tick 1000"),
    (Venue.UPBIT, 0.00003, 159_000_000.0, "below the minimum 5000 KRW"),
    (Venue.UPBIT, -0.01, 159_000_000.0, "quantity must be a positive number"),
    (Venue.UPBIT, 0.01, float("nan"), "price nan must be a positive number"),
])
def test_rules_name_what_is_wrong_and_where(venue: Venue, qty: float, price: float, message: str) -> None:
    with pytest.raises(OrderRuleError, match=message) as err:
        check_order_rules(venue.value, SIM_RULES[venue], PlaceRequest("r-1", "BTC", Side.BUY, qty, price))
    assert str(err.value).startswith(f"{venue.value}: buy ") and "(r-1)" in str(err.value)


def test_rules_refuse_before_anything_is_sent(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, live_venue(sim, Venue.BINANCE) as lv:
            step_venue(sim, "binance")
            with pytest.raises(OrderRuleError, match="not a multiple of the lot size"):
                await lv.place(PlaceRequest("r-1", "BTC", Side.BUY, 0.000015, 100_000.0))
            assert sim.journal("order") == [] and lv.stats.orders_sent == 0 and lv.stats.requests == 1
    run(scenario())


def test_usdm_min_notional_is_waived_for_reduce_only_and_reduce_only_is_usdm_only(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, live_venue(sim, Venue.BINANCE_USDM) as lv, \
                live_venue(sim, Venue.BINANCE) as spot:
            book = step_venue(sim, "binance_usdm")
            await lv.place(PlaceRequest("open", "BTC", Side.SELL, 0.002, book.bids[0][0], kind="market"))
            assert await lv.positions() == {"BTC": pytest.approx(-0.002)}
            # 0.0009 BTC is below 100 USDT: only a reduce-only exit may be that small
            close = await lv.place(PlaceRequest("close", "BTC", Side.BUY, 0.002, book.asks[0][0], kind="market",
                                                reduce_only=True))
            assert close.filled == pytest.approx(0.002) and await lv.positions() == {}
            funding = await lv.funding("BTC")
            assert funding.rate == pytest.approx(0.0001) and funding.mark_price == pytest.approx(book.mid)
            with pytest.raises(OrderRuleError, match="reduce-only exists on binance_usdm only"):
                await spot.place(PlaceRequest("x", "BTC", Side.BUY, 0.001, 100_000.0, reduce_only=True))
    run(scenario())


@pytest.mark.parametrize("venue", VENUES)
def test_429_backs_off_is_counted_and_sends_once(data: Path, venue: Venue) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, live_venue(sim, venue) as lv:
            book = step_venue(sim, venue.value)
            await sim.fault({"kind": "http_error", "venue": venue.value, "status": 429, "count": 2,
                             "retry_after_s": 0})
            order = await lv.place(PlaceRequest("rl-1", "BTC", Side.SELL, 0.01, crossing(venue, book, Side.SELL)))
            assert order.filled == pytest.approx(0.01)
            assert lv.stats.rate_limited == 2 and lv.stats.retries == 2
            assert len([e for e in sim.journal("order") if e["event"] == "new"]) == 1
            assert len(sim.journal("fault")) == 2
    run(scenario())


@pytest.mark.parametrize("venue", VENUES)
def test_a_lost_reply_is_found_by_client_id_not_sent_twice(data: Path, venue: Venue) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, live_venue(sim, venue) as lv:
            book = step_venue(sim, venue.value)
            await sim.fault({"kind": "http_error", "venue": venue.value, "status": 502, "count": 1, "after": True})
            order = await lv.place(PlaceRequest("lost-1", "BTC", Side.SELL, 0.01, crossing(venue, book, Side.SELL)))
            new = [e for e in sim.journal("order") if e["event"] == "new"]
            assert len(new) == 1 and new[0]["client_id"] == order.client_id, "exactly one order reached the venue"
            assert order.final and order.filled == pytest.approx(0.01) and order.fee_quote > 0
            assert lv.stats.recovered == 1 and lv.stats.failures == 1
    run(scenario())


@pytest.mark.parametrize("venue", VENUES)
def test_a_send_refused_by_a_5xx_is_looked_up_then_resent_under_the_same_id(data: Path, venue: Venue) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, live_venue(sim, venue) as lv:
            book = step_venue(sim, venue.value)
            await sim.fault({"kind": "http_error", "venue": venue.value, "status": 503, "count": 1})
            order = await lv.place(PlaceRequest("again-1", "BTC", Side.SELL, 0.01, crossing(venue, book, Side.SELL)))
            new = [e for e in sim.journal("order") if e["event"] == "new"]
            assert [e["client_id"] for e in new] == [order.client_id] and order.filled == pytest.approx(0.01)
            assert lv.stats.orders_sent == 2 and lv.stats.recovered == 0
    run(scenario())


def test_venue_refusals_are_order_rejected_and_upbit_ids_stay_spent(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, live_venue(sim, Venue.UPBIT) as lv:
            book = step_venue(sim, "upbit")
            too_much = PlaceRequest("big-1", "BTC", Side.SELL, 5.0, crossing(Venue.UPBIT, book, Side.SELL))
            with pytest.raises(OrderRejected, match="InsufficientFunds"):
                await lv.place(too_much)
            with pytest.raises(OrderRejected, match="spent by a request the venue refused"):
                await lv.place(PlaceRequest("big-1", "BTC", Side.SELL, 0.01, too_much.price))
            assert sim.journal("order") == []
    run(scenario())


def test_an_outage_beyond_the_retries_is_venue_unavailable(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, live_venue(sim, Venue.BINANCE) as lv:
            book = step_venue(sim, "binance")
            await sim.fault({"kind": "http_error", "venue": "binance", "status": 503, "fraction": 1.0})
            with pytest.raises(VenueUnavailable, match="failed 6 times"):
                await lv.place(PlaceRequest("down-1", "BTC", Side.SELL, 0.01, crossing(Venue.BINANCE, book, Side.SELL)))
            assert sim.journal("order") == []
            await sim.fault({"kind": "clear", "venue": "binance"})
            assert await lv.lookup("BTC", lv.client_id("down-1")) is None
    run(scenario())


@pytest.mark.parametrize("venue", (Venue.UPBIT, Venue.BINANCE))
def test_open_orders_listed_and_cancelled(data: Path, venue: Venue) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, live_venue(sim, venue) as lv:
            book = step_venue(sim, venue.value)
            resting = await lv.exchange.create_order(lv.symbol("BTC"), "limit", "buy", 0.01, book.bids[-1][0])
            listed = await lv.open_orders()
            assert [(o.order_id, o.coin, o.side, o.status) for o in listed] == [(resting["id"], "BTC", Side.BUY, "open")]
            await sim.fault({"kind": "http_error", "venue": venue.value, "status": 502, "count": 1, "after": True})
            done = await lv.cancel("BTC", resting["id"])   # the cancel's reply is lost: the fetch tells
            assert done.status == "canceled" and await lv.open_orders("BTC") == []
    run(scenario())


@pytest.mark.parametrize("venue", VENUES)
def test_an_order_answered_as_accepted_is_followed_until_done(data: Path, venue: Venue) -> None:
    """Upbit answers `wait` and USDT-M `NEW`: the fills come from querying the order afterwards."""
    async def scenario() -> None:
        async with running_sim(data, ack_replies=[venue.value]) as sim, live_venue(sim, venue) as lv:
            book = step_venue(sim, venue.value)
            raw = await lv.exchange.create_order(lv.symbol("BTC"), "market", "sell", 0.01)
            assert raw["status"] == "open" and not raw["filled"], "the simulator answers before matching"
            order = await lv.place(PlaceRequest("ack-1", "BTC", Side.SELL, 0.01, crossing(venue, book, Side.SELL)))
            got, avg = vwap(book.bids, 0.01, crossing(venue, book, Side.SELL), Side.SELL)
            assert order.status == "closed" and order.filled == pytest.approx(0.01)
            assert order.average == pytest.approx(avg, rel=1e-9) and order.fee_quote > 0
            assert lv.stats.requests >= 3, "create, then at least one query for the fills"
    run(scenario())


@pytest.mark.parametrize("venue", VENUES)
def test_the_order_stream_reports_done_orders_and_rest_confirms(data: Path, venue: Venue) -> None:
    """ccxt.pro watch_orders on the simulator's private streams (Upbit myOrder, Binance executionReport
    over the WebSocket API, USDT-M ORDER_TRADE_UPDATE over a listenKey) wakes the order's wait."""
    async def scenario() -> None:
        async with running_sim(data, ack_replies=[venue.value]) as sim:
            exchange = open_exchange(venue, sim_keys("upbit" if venue is Venue.UPBIT else "binance"), sim.urls(),
                                     rate_limit=False)
            stream = OrderStream(exchange, venue.value)
            async with live_venue(sim, venue, exchange=exchange, stream=stream) as lv:
                book = step_venue(sim, venue.value)
                await poll_until(lambda: stream.healthy or stream.error, 10)
                assert stream.healthy, stream.error
                order = await lv.place(PlaceRequest("st-1", "BTC", Side.SELL, 0.01, crossing(venue, book, Side.SELL)))
                assert order.status == "closed" and order.filled == pytest.approx(0.01)
                assert stream.finals_heard == 1 and stream.updates >= 2
    run(scenario())


@pytest.mark.parametrize("venue", VENUES)
def test_a_cancel_that_finds_the_order_partly_filled_returns_the_fills_fee(data: Path, venue: Venue) -> None:
    """A sell larger than the best bid fills that level and rests the rest; cancelling it reports what
    filled with the fee the venue charged (Binance's order query carries no fee: the trades do)."""
    async def scenario() -> None:
        async with running_sim(data) as sim, live_venue(sim, venue) as lv:
            book = step_venue(sim, venue.value)
            rules = SIM_RULES[venue]
            price, top = rules.round_price(book.bids[0][0], "buy"), book.bids[0][1]   # down onto USDT-M's tick
            qty = rules.round_qty(top + 10 * rules.lot_size)
            if venue is Venue.BINANCE:
                sim.engine.fund("binance", KEY, "BTC", qty)          # the key holds 1 BTC; the best bid more
            resting = await lv.exchange.create_order(lv.symbol("BTC"), "limit", "sell", qty, price)
            (accepted,) = [e for e in sim.journal("order") if e["event"] == "open"]
            assert 0 < accepted["filled_qty"] < qty, "partly filled, still open"
            done = await lv.cancel("BTC", resting["id"])
            assert done.status == "canceled" and done.filled == pytest.approx(accepted["filled_qty"])
            assert done.fee_quote == pytest.approx(accepted["fee"], rel=1e-9) and done.fee_quote > 0
    run(scenario())


@pytest.mark.parametrize("venue, method, read", [(Venue.UPBIT, "fetch_balance", "balances"),
                                                 (Venue.BINANCE_USDM, "fetch_positions", "positions")])
def test_an_account_read_the_venue_refuses_is_a_venue_error_naming_venue_and_call(venue, method, read) -> None:
    """Not a raw ccxt error: reconcile and the kill switch handle VenueError per venue, so one venue's
    refusal does not end the whole reconcile."""
    import ccxt

    from live.errors import VenueError
    from live.venue import LiveVenue
    from tests.live.fake_exchange import FakeExchange

    refused = ccxt.ExchangeError('{"error": {"name": "invalid_query_payload"}}')
    lv = LiveVenue(venue, FakeExchange(errors={method: refused}), lambda coin: SIM_RULES[venue], "run-1")
    with pytest.raises(VenueError, match=f"{venue.value}.*{method}.*invalid_query_payload"):
        asyncio.run(getattr(lv, read)())
