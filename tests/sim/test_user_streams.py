"""The simulator's private order streams: the update sequence, and each venue's authentication refusing a bad client."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from pathlib import Path

import aiohttp
import pytest

from sim.matching import OrderRequest, SimOrder
from sim.user_streams import steps
from tests.sim.support import KEY, SECRET, running_sim


def order(status: str, qty: float | None, fills, fee: float = 0.3) -> SimOrder:
    req = OrderRequest("binance", KEY, "BTC", "sell", "limit", qty, 100.0, None, "IOC", "c-1")
    filled = sum(q for _, q in fills)
    return SimOrder(req, "7", 7, 1000, status, filled, sum(p * q for p, q in fills), fee, "USDT", tuple(fills))


def test_steps_tell_an_ioc_fill_by_fill_then_expire_the_rest() -> None:
    fills = ((101.0, 1.0), (100.0, 0.5))
    got = steps("new", order("canceled", 2.0, fills), fills)
    assert [(s.kind, s.status, s.last_qty, s.cum_qty) for s in got] == [
        ("NEW", "open", 0.0, 0.0), ("TRADE", "partial", 1.0, 1.0), ("TRADE", "partial", 0.5, 1.5),
        ("EXPIRED", "expired", 0.0, 1.5)]
    assert got[2].cum_quote == pytest.approx(151.0) and got[2].cum_fee == pytest.approx(0.3)


def test_steps_of_a_full_fill_end_done_and_a_cancel_is_one_step() -> None:
    fills = ((101.0, 1.0),)
    assert [(s.kind, s.status) for s in steps("new", order("filled", 1.0, fills), fills)] == [
        ("NEW", "open"), ("TRADE", "filled"), ("DONE", "filled")]
    assert [s.kind for s in steps("canceled", order("canceled", 1.0, ()), ())] == ["CANCELED"]
    resting = order("filled", 1.0, fills)
    assert [s.kind for s in steps("matched", resting, fills)] == ["TRADE", "DONE"]


def test_upbit_private_stream_refuses_a_connection_without_a_valid_jwt(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, aiohttp.ClientSession() as http:
            url = sim.urls()["upbit"]["ws"] + "/private"
            for headers in ({}, {"Authorization": "Bearer not-a-jwt"}):
                with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                    await http.ws_connect(url, headers=headers)
                assert err.value.status == 401
    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_binance_ws_api_subscription_checks_the_signature(data: Path) -> None:
    def signed(secret: str) -> dict:
        params = {"apiKey": KEY, "timestamp": int(time.time() * 1000)}
        query = "&".join(f"{k}={params[k]}" for k in sorted(params))
        return {**params, "signature": hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()}

    async def scenario() -> None:
        async with running_sim(data) as sim, aiohttp.ClientSession() as http:
            url = sim.urls()["binance"]["rest"].replace("http://", "ws://") + "/ws-api/v3"
            async with http.ws_connect(url) as ws:
                await ws.send_str(json.dumps({"id": "1", "method": "userDataStream.subscribe.signature",
                                              "params": signed("wrong-secret")}))
                bad = json.loads((await ws.receive(timeout=5)).data)
                assert bad["id"] == "1" and bad["status"] == 400 and bad["error"]["code"] == -1022
                await ws.send_str(json.dumps({"id": "2", "method": "userDataStream.subscribe.signature",
                                              "params": signed(SECRET)}))
                good = json.loads((await ws.receive(timeout=5)).data)
                assert good == {"id": "2", "status": 200, "result": {"subscriptionId": 0}, "rateLimits": []}
                await ws.send_str(json.dumps({"id": "3", "method": "order.place", "params": {}}))
                assert json.loads((await ws.receive(timeout=5)).data)["status"] == 400
    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_usdm_listen_key_needs_a_known_api_key_and_the_stream_a_known_listen_key(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, aiohttp.ClientSession() as http:
            rest = sim.urls()["binance_usdm"]["rest"] + "/fapi/v1/listenKey"
            async with http.post(rest, headers={"X-MBX-APIKEY": "nobody"}) as resp:
                assert resp.status == 401 and (await resp.json())["code"] == -2015
            async with http.post(rest, headers={"X-MBX-APIKEY": KEY}) as resp:
                listen = (await resp.json())["listenKey"]
            async with http.post(rest, headers={"X-MBX-APIKEY": KEY}) as resp:
                assert (await resp.json())["listenKey"] == listen, "the key's active listenKey comes back"
            ws_base = sim.urls()["binance_usdm"]["ws"] + "/private/ws"
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await http.ws_connect(ws_base + "?listenKey=forged")
            assert err.value.status == 400
            async with http.ws_connect(ws_base + f"?listenKey={listen}") as ws:
                assert not ws.closed
    asyncio.run(asyncio.wait_for(scenario(), 30))
