"""What preflight and the live venue layer ask the simulator: key permissions, trades, id reuse, lost replies, clock."""
from __future__ import annotations

import asyncio
from email.utils import parsedate_to_datetime
from pathlib import Path

import ccxt
import pytest

from sim.auth import ApiKey
from tests.sim.support import BALANCES, KEY, SECRET, SYMBOL, exchange, running_sim, step_venue


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


@pytest.mark.parametrize("can_withdraw", (False, True))
def test_binance_api_restrictions_report_the_keys_withdrawal_switch(data: Path, can_withdraw: bool) -> None:
    async def scenario() -> None:
        key = ApiKey(KEY, SECRET, can_withdraw=can_withdraw)
        async with running_sim(data, keys=[key]) as sim:
            for venue in ("binance", "binance_usdm"):  # one account: both clients reach the same sapi
                async with exchange(sim, venue) as ex:
                    answer = await ex.sapi_get_account_apirestrictions()
                    assert answer["enableWithdrawals"] is can_withdraw
                    assert answer["enableSpotAndMarginTrading"] is True and answer["enableFutures"] is True
            async with exchange(sim, "binance", secret="wrong-secret-" + "x" * 30) as ex:
                with pytest.raises(ccxt.AuthenticationError):
                    await ex.sapi_get_account_apirestrictions()
    run(scenario())


def test_upbit_api_keys_list_the_key_with_its_expiry(data: Path) -> None:
    async def scenario() -> None:
        key = ApiKey(KEY, SECRET, expire_at="2031-01-02T03:04:05+09:00")
        async with running_sim(data, keys=[key]) as sim, exchange(sim, "upbit") as ex:
            assert await ex.private_get_api_keys() == [{"access_key": KEY, "expire_at": "2031-01-02T03:04:05+09:00"}]
    run(scenario())


@pytest.mark.parametrize("venue", ("binance", "binance_usdm"))
def test_binance_my_trades_list_each_fill_of_an_order_with_its_commission(data: Path, venue: str) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, exchange(sim, venue) as ex:
            book = step_venue(sim, venue)
            qty = round(book.asks[0][1] + 0.002, 3)  # more than the best level: two or more trades
            order = await ex.create_order(SYMBOL[venue], "market", "buy", qty)
            other = await ex.create_order(SYMBOL[venue], "market", "buy", 0.01)
            trades = await ex.fetch_my_trades(SYMBOL[venue], params={"orderId": order["id"]})
            assert len(trades) >= 2 and {t["order"] for t in trades} == {order["id"]}
            assert sum(t["amount"] for t in trades) == pytest.approx(qty)
            assert [t["price"] for t in trades] == [p for p, _ in book.asks[:len(trades)]]
            fee_rate = 0.001 if venue == "binance" else 0.0005
            if venue == "binance":   # spot buys pay the fee in the coin
                assert {t["fee"]["currency"] for t in trades} == {"BTC"}
                assert sum(t["fee"]["cost"] for t in trades) == pytest.approx(qty * fee_rate)
            else:
                assert {t["fee"]["currency"] for t in trades} == {"USDT"}
                assert sum(t["fee"]["cost"] for t in trades) == pytest.approx(
                    sum(t["price"] * t["amount"] for t in trades) * fee_rate)
            every = await ex.fetch_my_trades(SYMBOL[venue])
            assert {t["order"] for t in every} == {order["id"], other["id"]}
    run(scenario())


@pytest.mark.parametrize("venue", ("binance", "binance_usdm"))
def test_binance_accepts_a_client_id_again_once_its_order_is_done(data: Path, venue: str) -> None:
    """Binance keeps newClientOrderId unique among open orders only: reuse after a fill is a new order."""
    async def scenario() -> None:
        async with running_sim(data) as sim, exchange(sim, venue) as ex:
            step_venue(sim, venue)
            first = await ex.create_order(SYMBOL[venue], "market", "buy", 0.01, None, {"clientOrderId": "re-1"})
            second = await ex.create_order(SYMBOL[venue], "market", "buy", 0.01, None, {"clientOrderId": "re-1"})
            assert first["id"] != second["id"] and first["status"] == second["status"] == "closed"
            assert [e["event"] for e in sim.journal("order")] == ["new", "filled", "new", "filled"]
            found = await ex.fetch_order(None, SYMBOL[venue], {"origClientOrderId": "re-1"})
            assert found["id"] == second["id"], "a query by client id finds the newest order"
    run(scenario())


def test_upbit_identifier_is_spent_even_by_a_rejected_request(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, exchange(sim, "upbit") as ex:
            book = step_venue(sim, "upbit")
            with pytest.raises(ccxt.InsufficientFunds):
                await ex.create_order("BTC/KRW", "market", "sell", 50.0, None, {"clientOrderId": "up-1"})
            with pytest.raises(ccxt.ExchangeError, match="duplicate_identifier"):
                await ex.create_order("BTC/KRW", "market", "sell", 0.01, None, {"clientOrderId": "up-1"})
            with pytest.raises(ccxt.OrderNotFound):
                await ex.private_get_order({"identifier": "up-1"})
            done = await ex.create_order("BTC/KRW", "limit", "sell", 0.01, book.bids[0][0],
                                         {"clientOrderId": "up-2", "timeInForce": "ioc"})
            with pytest.raises(ccxt.ExchangeError, match="duplicate_identifier"):
                await ex.create_order("BTC/KRW", "limit", "sell", 0.01, book.bids[0][0], {"clientOrderId": "up-2"})
            assert ex.parse_order(await ex.private_get_order({"identifier": "up-2"}))["id"] == done["id"]
            assert [e["event"] for e in sim.journal("order")] == ["new", "filled"]
    run(scenario())


@pytest.mark.parametrize("venue", ("upbit", "binance", "binance_usdm"))
def test_fault_after_places_the_order_and_loses_the_reply(data: Path, venue: str) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, exchange(sim, venue) as ex:
            book = step_venue(sim, venue)
            await ex.load_markets()
            await sim.fault({"kind": "http_error", "venue": venue, "status": 502, "count": 1, "after": True})
            with pytest.raises(ccxt.ExchangeNotAvailable):
                await ex.create_order(SYMBOL[venue], "limit", "sell", 0.01, book.bids[-1][0],
                                      {"clientOrderId": "lost-1", "timeInForce": "IOC"})
            assert [e["event"] for e in sim.journal("order")] == ["new", "filled"], "the venue did place it"
            assert sim.journal("fault")[-1]["after"] is True
    run(scenario())


def test_clock_fault_shifts_server_time_and_the_date_header(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, exchange(sim, "binance") as ex, exchange(sim, "upbit") as up:
            before = await ex.fetch_time()
            await sim.fault({"kind": "clock", "offset_ms": 120_000})
            after = await ex.fetch_time()
            assert 115_000 < after - before < 130_000
            await up.public_get_market_all()
            date = parsedate_to_datetime(up.last_response_headers["Date"]).timestamp() * 1000
            assert abs(date - after) < 5_000
            with pytest.raises(ccxt.InvalidNonce):   # signed requests now fall outside recvWindow (-1021)
                await ex.fetch_balance()
            await sim.fault({"kind": "clock", "offset_ms": 0})
            assert (await ex.fetch_balance())["USDT"]["free"] == BALANCES[("binance", KEY)]["USDT"]
    run(scenario())
