"""ccxt.pro and raw WebSocket clients against the simulator's Upbit and Binance streams."""
from __future__ import annotations

import ast
import asyncio
import json
from pathlib import Path

import aiohttp
import ccxt
import pytest

from tests.sim.support import SYMBOL, exchange, levels, poll, running_sim, step_venue, watch_until

VENUES = ("upbit", "binance", "binance_usdm")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


@pytest.mark.parametrize("venue", VENUES)
def test_watch_order_book_holds_exactly_the_published_books(data: Path, venue: str) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, exchange(sim, venue) as ex:
            first = step_venue(sim, venue)
            await watch_until(ex, SYMBOL[venue], first)
            second = step_venue(sim, venue)
            assert (second.bids, second.asks) != (first.bids, first.asks), "recording should move"
            ob = await watch_until(ex, SYMBOL[venue], second)
            assert len(ob["bids"]) == len(second.bids) == 20
    run(scenario())


@pytest.mark.parametrize("venue", VENUES)
def test_fetch_order_book_and_load_markets(data: Path, venue: str) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, exchange(sim, venue) as ex:
            markets = await ex.load_markets()
            assert SYMBOL[venue] in markets
            book = step_venue(sim, venue)
            ob = await ex.fetch_order_book(SYMBOL[venue])
            assert levels(ob["bids"]) == list(book.bids) and levels(ob["asks"]) == list(book.asks)
    run(scenario())


def _capture_frames(path: Path) -> list[dict]:
    frames = []
    for line in path.read_text().splitlines():
        _, sep, frame = line.partition(": ")
        frame = frame.strip()
        if not sep or not frame:
            continue
        try:
            frames.append(json.loads(ast.literal_eval(frame) if frame.startswith("b'") else frame))
        except (ValueError, SyntaxError):
            continue
    return [f for f in frames if isinstance(f, dict)]


def test_upbit_frames_binary_snapshot_first_and_shaped_like_the_capture(data: Path) -> None:
    capture = [f for f in _capture_frames(data / "wire" / "upbit_ws_simple_2021-04-05.txt") if f.get("ty") == "orderbook"]
    assert capture, "capture holds SIMPLE orderbook frames"

    async def scenario() -> None:
        async with running_sim(data) as sim, aiohttp.ClientSession() as http:
            first = step_venue(sim, "upbit")
            async with http.ws_connect(sim.urls()["upbit"]["ws"]) as ws:
                await ws.send_str(json.dumps([{"ticket": "t1"}, {"type": "orderbook", "codes": ["KRW-BTC"]},
                                              {"format": "SIMPLE"}]))
                msg = await ws.receive(timeout=5)
                assert msg.type == aiohttp.WSMsgType.BINARY
                snap = json.loads(msg.data)
                assert snap["st"] == "SNAPSHOT" and snap["cd"] == "KRW-BTC" and snap["tms"] == first.ts_ms
                assert set(capture[0]) <= set(snap), "every key the venue sends, we send"
                assert set(snap["obu"][0]) == set(capture[0]["obu"][0]) == {"ap", "bp", "as", "bs"}
                assert [(u["bp"], u["bs"]) for u in snap["obu"]] == list(first.bids)
                second = step_venue(sim, "upbit")
                real = json.loads((await ws.receive(timeout=5)).data)
                assert real["st"] == "REALTIME" and [(u["ap"], u["as"]) for u in real["obu"]] == list(second.asks)
                await ws.send_str("PING")
                assert json.loads((await ws.receive(timeout=5)).data) == {"status": "UP"}
                await ws.send_str(json.dumps([{"ticket": "t2"}, {"type": "orderbook", "codes": ["KRW-BTC.5"]}]))
                default = json.loads((await ws.receive(timeout=5)).data)
                assert default["stream_type"] == "SNAPSHOT" and len(default["orderbook_units"]) == 5
                assert {"type", "code", "timestamp", "total_ask_size", "total_bid_size"} <= set(default)
                await ws.send_str("[not json")
                assert "error" in json.loads((await ws.receive(timeout=5)).data)
    run(scenario())


@pytest.mark.parametrize("venue,capture", [("binance", "binance_spot_ws_2021-10-12.txt"),
                                           ("binance_usdm", "binance_usdm_ws_2021-07-22.txt")])
def test_binance_events_match_capture_and_continue_the_snapshot(data: Path, venue: str, capture: str) -> None:
    real = [f["data"] for f in _capture_frames(data / "wire" / capture) if "data" in f]
    depth_keys = next(set(d) for d in real if d.get("e") == "depthUpdate")
    ticker_keys = next(set(d) for d in real if "B" in d and "A" in d)

    async def scenario() -> None:
        async with running_sim(data) as sim, aiohttp.ClientSession() as http:
            step_venue(sim, venue)
            rest = sim.urls()[venue]["rest"] + ("/api/v3" if venue == "binance" else "/fapi/v1")
            async with http.get(f"{rest}/depth", params={"symbol": "BTCUSDT", "limit": "1000"}) as resp:
                snapshot = await resp.json()
            streams = "btcusdt@depth@100ms/btcusdt@bookTicker"
            async with http.ws_connect(f"{sim.urls()[venue]['ws']}/stream?streams={streams}") as ws:
                prev_u = snapshot["lastUpdateId"]
                for _ in range(2):
                    step_venue(sim, venue)
                    got = {}
                    while len(got) < 2:
                        frame = json.loads((await ws.receive(timeout=5)).data)
                        got[frame["stream"]] = frame["data"]
                    depth = got["btcusdt@depth@100ms"]
                    assert set(depth) == depth_keys
                    assert set(got["btcusdt@bookTicker"]) == ticker_keys
                    assert depth["U"] == prev_u + 1 and depth["u"] >= depth["U"]
                    if venue == "binance_usdm":
                        assert depth["pu"] == prev_u
                    prev_u = depth["u"]
    run(scenario())


@pytest.mark.parametrize("venue", ("binance", "binance_usdm"))
def test_sequence_gap_makes_ccxt_raise_checksum_error_then_resync(data: Path, venue: str) -> None:
    """ccxt.pro binance raises ChecksumError on a gap and drops the book; watching again resyncs
    from a fresh REST snapshot. The feed actor catches ChecksumError and calls watch again."""
    async def scenario() -> None:
        async with running_sim(data) as sim, exchange(sim, venue) as ex:
            await watch_until(ex, SYMBOL[venue], step_venue(sim, venue))
            await sim.fault({"kind": "gap", "venue": venue, "skip": 3})
            step_venue(sim, venue)
            with pytest.raises(ccxt.ChecksumError):
                for _ in range(5):
                    await asyncio.wait_for(ex.watch_order_book(SYMBOL[venue]), 5)
            await watch_until(ex, SYMBOL[venue], sim.board.book(venue, "BTC"))
            await watch_until(ex, SYMBOL[venue], step_venue(sim, venue))
    run(scenario())


@pytest.mark.parametrize("venue", VENUES)
def test_disconnect_fault_then_a_new_watch_reconnects(data: Path, venue: str) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, exchange(sim, venue) as ex:
            await watch_until(ex, SYMBOL[venue], step_venue(sim, venue))
            result = await sim.fault({"kind": "disconnect", "venue": venue})
            assert result["closed"] == 1
            with pytest.raises(ccxt.NetworkError):
                await asyncio.wait_for(ex.watch_order_book(SYMBOL[venue]), 5)
            book = step_venue(sim, venue)
            await watch_until(ex, SYMBOL[venue], book)
            assert sim.hub.count(venue) == 1
    run(scenario())


def test_stall_holds_frames_and_malformed_sends_invalid_json(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data) as sim, aiohttp.ClientSession() as http:
            step_venue(sim, "binance")
            async with http.ws_connect(f"{sim.urls()['binance']['ws']}/ws") as ws:
                await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": 7}))
                assert json.loads((await ws.receive(timeout=5)).data) == {"result": None, "id": 7}
                await sim.fault({"kind": "stall", "venue": "binance", "seconds": 0.4})
                step_venue(sim, "binance")
                with pytest.raises(asyncio.TimeoutError):
                    await ws.receive(timeout=0.2)
                event = json.loads((await ws.receive(timeout=5)).data)
                assert event["e"] == "depthUpdate" and "stream" not in event, "raw /ws frames are unwrapped"
                await sim.fault({"kind": "malformed", "venue": "binance", "count": 1})
                step_venue(sim, "binance")
                bad = (await ws.receive(timeout=5)).data
                with pytest.raises(json.JSONDecodeError):
                    json.loads(bad)
                await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["BTCUSDT@nope"], "id": 8}))
                assert json.loads((await ws.receive(timeout=5)).data)["error"]["code"] == 2
    run(scenario())


def test_replay_at_speed_streams_books_without_stepping(data: Path) -> None:
    async def scenario() -> None:
        async with running_sim(data, speed=1000.0) as sim:
            await poll(lambda: sim.replayer.published == 14, timeout=10)  # 8 Upbit + 3 spot + 3 perp
            assert sim.board.book("upbit", "BTC").ts_ms == sim.replayer.last_ts_ms  # recording ends on Upbit
            assert sim.step() is None, "the recording is exhausted"
    run(scenario())
