"""Signed orders through real ccxt against the simulator: fills, balances, auth, duplicates, HTTP faults."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import ccxt
import pytest

from tests.sim.support import KEY, SECRET, SYMBOL, exchange, running_sim, step_venue

VENUES = ("upbit", "binance", "binance_usdm")
FEE = {"upbit": 0.0005, "binance": 0.001, "binance_usdm": 0.0005}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def _order_entries(sim) -> list[dict]:
    return sim.journal("order")


@pytest.mark.parametrize("venue", VENUES)
def test_market_buy_walks_the_book_charges_the_fee_and_moves_balances(data: Path, venue: str) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, exchange(sim, venue) as ex:
            book = step_venue(sim, venue)
            before = await ex.fetch_balance()
            qty = round(book.asks[0][1] + 0.002, 3)  # more than the best level: must walk to level 2+
            price = book.asks[1][0] if venue == "upbit" else None  # Upbit market buys spend price * amount
            order = await ex.create_order(SYMBOL[venue], "market", "buy", qty, price)
            after = await ex.fetch_balance()
            left, cost = qty, 0.0
            for px, size in book.asks:
                take = min(size, left)
                cost += px * take
                left -= take
                if left <= 0:
                    break
            quote = "KRW" if venue == "upbit" else "USDT"
            if venue == "upbit":  # Upbit buys by funds: it spends price * amount
                spend = qty * book.asks[1][0]
                assert after[quote]["free"] == pytest.approx(before[quote]["free"] - spend * (1 + FEE[venue]))
                assert order["id"] and order["status"] == "closed"
            elif venue == "binance":
                got = float(order["filled"])
                assert got == pytest.approx(qty) and order["average"] == pytest.approx(cost / qty)
                assert after["BTC"]["free"] == pytest.approx(before["BTC"]["free"] + got * (1 - FEE[venue]))
                assert after[quote]["free"] < before[quote]["free"]
            else:
                assert float(order["filled"]) == pytest.approx(qty)
                assert order["average"] == pytest.approx(cost / qty)
                assert after[quote]["total"] == pytest.approx(before[quote]["total"] - cost * FEE[venue])
                positions = await ex.fetch_positions([SYMBOL[venue]])
                assert positions[0]["contracts"] == pytest.approx(qty) and positions[0]["side"] == "long"
            fetched = await ex.fetch_order(order["id"], SYMBOL[venue])
            assert fetched["id"] == order["id"] and float(fetched["filled"]) > 0
            assert [e["event"] for e in _order_entries(sim)] == ["new", "filled"]
            assert any(e["reason"] == "fill" for e in sim.journal("balance"))
    run(scenario())


@pytest.mark.parametrize("venue", VENUES)
def test_limit_ioc_stops_at_its_price(data: Path, venue: str) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, exchange(sim, venue) as ex:
            book = step_venue(sim, venue)
            await ex.load_markets()
            limit = float(ex.price_to_precision(SYMBOL[venue], book.asks[0][0]))  # on the venue's tick
            within = sum(q for p, q in book.asks if p <= limit)
            qty = round(within + 0.5, 3)
            await ex.create_order(SYMBOL[venue], "limit", "buy", qty, limit, {"timeInForce": "IOC"})
            final = sim.journal("order")[-1]
            assert final["event"] == "canceled", "the part beyond the limit price does not fill"
            assert final["filled_qty"] == pytest.approx(within)
    run(scenario())


@pytest.mark.parametrize("venue", ("upbit", "binance"))
def test_gtc_limit_rests_is_listed_and_cancels_with_funds_unlocked(data: Path, venue: str) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, exchange(sim, venue) as ex:
            book = step_venue(sim, venue)
            price = book.bids[-1][0]  # far below the market: rests
            before = await ex.fetch_balance()
            order = await ex.create_order(SYMBOL[venue], "limit", "buy", 0.01, price)
            assert order["status"] == "open"
            assert [o["id"] for o in await ex.fetch_open_orders(SYMBOL[venue])] == [order["id"]]
            quote = "KRW" if venue == "upbit" else "USDT"
            locked = (await ex.fetch_balance())[quote]["used"]
            assert locked == pytest.approx(0.01 * price * (1 + (FEE[venue] if venue == "upbit" else 0)))
            await ex.cancel_order(order["id"], SYMBOL[venue])
            assert await ex.fetch_open_orders(SYMBOL[venue]) == []
            after = await ex.fetch_balance()
            assert after[quote]["free"] == pytest.approx(before[quote]["free"]) and after[quote]["used"] == 0
    run(scenario())


@pytest.mark.parametrize("venue", VENUES)
def test_wrong_secret_is_refused_and_no_order_reaches_the_journal(data: Path, venue: str) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, exchange(sim, venue, secret="not-the-secret-" + "x" * 32) as ex:
            step_venue(sim, venue)
            with pytest.raises(ccxt.AuthenticationError):
                await ex.create_order(SYMBOL[venue], "limit", "buy", 0.01, 1000.0)
            with pytest.raises(ccxt.AuthenticationError):
                await ex.fetch_balance()
            assert _order_entries(sim) == []
            assert {e["reason"] for e in sim.journal("balance")} == {"deposit"}, "no balance moved"
    run(scenario())


@pytest.mark.parametrize("venue", VENUES)
def test_duplicate_client_order_id_is_refused_never_doubled(data: Path, venue: str) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, exchange(sim, venue) as ex:
            book = step_venue(sim, venue)
            price = book.bids[-1][0]
            await ex.create_order(SYMBOL[venue], "limit", "buy", 0.01, price, {"clientOrderId": "kp-1"})
            with pytest.raises(ccxt.ExchangeError) as err:
                await ex.create_order(SYMBOL[venue], "limit", "buy", 0.01, price, {"clientOrderId": "kp-1"})
            assert "uplicat" in str(err.value)
            assert [e["event"] for e in _order_entries(sim)] == ["new", "open"]
            assert [e["reason"] for e in sim.journal("reject")] == ["duplicate"]
            assert len(await ex.fetch_open_orders(SYMBOL[venue])) == 1
    run(scenario())


def test_insufficient_funds_is_the_venue_error(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, exchange(sim, "upbit") as ex:
            book = step_venue(sim, "upbit")
            with pytest.raises(ccxt.InsufficientFunds):
                await ex.create_order("BTC/KRW", "market", "sell", 5.0, book.bids[0][0])
            assert _order_entries(sim) == []
    run(scenario())


@pytest.mark.parametrize("venue", VENUES)
def test_429_fault_raises_rate_limit_with_retry_after(data: Path, venue: str) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, exchange(sim, venue) as ex:
            step_venue(sim, venue)
            await ex.load_markets()
            await sim.fault({"kind": "http_error", "venue": venue, "status": 429, "count": 1, "retry_after_s": 3})
            # ccxt maps Upbit's 429 to RateLimitExceeded and Binance's to DDoSProtection (both NetworkError)
            with pytest.raises((ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
                await ex.fetch_order_book(SYMBOL[venue])
            assert (await ex.fetch_order_book(SYMBOL[venue]))["bids"], "the fault lasted one request"
            await sim.fault({"kind": "http_error", "venue": venue, "status": 429, "count": 1})
            async with aiohttp.ClientSession() as http:
                async with http.get(sim.urls()[venue]["rest"] + "/anything") as resp:
                    assert resp.status == 429 and resp.headers["Retry-After"] == "1"
            await sim.fault({"kind": "http_error", "venue": venue, "status": 503, "fraction": 1.0})
            with pytest.raises(ccxt.ExchangeNotAvailable):
                await ex.fetch_order_book(SYMBOL[venue])
            await sim.fault({"kind": "clear", "venue": venue})
            assert (await ex.fetch_order_book(SYMBOL[venue]))["asks"]
    run(scenario())


def test_binance_checks_signature_timestamp_and_recv_window(data: Path) -> None:
    def signed(params: dict, secret: str = SECRET) -> str:
        query = urlencode(params)
        return query + "&signature=" + hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()

    async def scenario() -> None:
        async with running_sim(data) as sim, aiohttp.ClientSession(headers={"X-MBX-APIKEY": KEY}) as http:
            url = sim.urls()["binance"]["rest"] + "/api/v3/account?"
            now = int(time.time() * 1000)
            async with http.get(url + signed({"timestamp": now})) as resp:
                assert resp.status == 200 and (await resp.json())["balances"]
            async with http.get(url + signed({"timestamp": now - 20_000, "recvWindow": 5000})) as resp:
                assert (await resp.json())["code"] == -1021
            async with http.get(url + signed({"timestamp": now}, secret="wrong")) as resp:
                assert resp.status == 400 and (await resp.json()) == {
                    "code": -1022, "msg": "Signature for this request is not valid."}
            async with http.get(url + f"timestamp={now}") as resp:
                assert (await resp.json())["code"] == -1102
    run(scenario())


def test_upbit_rejects_a_token_whose_query_hash_does_not_match(data: Path) -> None:
    import jwt

    async def scenario() -> None:
        async with running_sim(data) as sim, aiohttp.ClientSession() as http:
            token = jwt.encode({"access_key": KEY, "nonce": "n1",
                                "query_hash": hashlib.sha512(b"market=KRW-ETH").hexdigest(),
                                "query_hash_alg": "SHA512"}, SECRET, algorithm="HS256")
            url = sim.urls()["upbit"]["rest"] + "/v1/orders/chance?market=KRW-BTC"
            async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
                body = await resp.json()
                assert resp.status == 401 and body["error"]["name"] == "invalid_query_payload"
            async with http.get(url) as resp:
                assert resp.status == 401 and (await resp.json())["error"]["name"] == "jwt_verification"
    run(scenario())


def test_upbit_streams_the_sims_own_fills_as_trades_and_enforces_min_total(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, exchange(sim, "upbit") as ex, aiohttp.ClientSession() as http:
            book = step_venue(sim, "upbit")
            async with http.ws_connect(sim.urls()["upbit"]["ws"]) as ws:
                await ws.send_str('[{"ticket":"t"},{"type":"trade","codes":["KRW-BTC"]},{"format":"SIMPLE"}]')
                await ex.create_order("BTC/KRW", "market", "sell", 0.001)
                trade = json.loads((await ws.receive(timeout=5)).data)
                assert (trade["ty"], trade["tp"], trade["tv"], trade["ab"]) == ("trade", book.bids[0][0], 0.001, "ASK")
            with pytest.raises(ccxt.ExchangeError, match="under_min_total_bid"):
                await ex.create_order("BTC/KRW", "limit", "buy", 0.00001, book.bids[0][0])
    run(scenario())
