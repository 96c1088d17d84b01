"""Simulator internals and control surfaces: sequencing, fault validation, replay, /_sim, CLI, thread."""
from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import ccxt
import pytest

from config.paths import REPO
from domain.book import Book
from sim import SimThread, ccxt_overrides
from sim.faults import BadFault, Faults
from sim.market import FIRST_UPDATE_ID, MarketBoard, level_changes
from sim.replay import Replayer
from tests.sim.support import load_jsonl_books, recorded_books, running_sim

BOOK_A = Book("binance", "BTC", 1000, ((100.0, 1.0), (99.0, 2.0)), ((101.0, 1.0), (102.0, 3.0)))
BOOK_B = Book("binance", "BTC", 1100, ((100.0, 1.5), (98.0, 2.0)), ((101.0, 1.0), (102.0, 3.0)))


def test_level_changes_marks_removed_levels_with_zero() -> None:
    assert level_changes(BOOK_A.bids, BOOK_B.bids) == ((100.0, 1.5), (98.0, 2.0), (99.0, 0.0))
    assert level_changes(BOOK_A.asks, BOOK_B.asks) == ()


def test_update_ids_continue_and_a_gap_breaks_pu() -> None:
    board = MarketBoard({"binance": ("BTC",)})
    first = board.publish(BOOK_A)
    assert (first.first_id, first.prev_last_id) == (FIRST_UPDATE_ID + 1, FIRST_UPDATE_ID)
    second = board.publish(BOOK_B)
    assert second.first_id == first.last_id + 1 and second.last_id == second.first_id + 2
    board.gaps_pending["binance"] = 2
    third = board.publish(BOOK_A)
    assert third.first_id == second.last_id + 3 and third.prev_last_id == second.last_id + 2
    assert board.last_update_id("binance", "BTC") == third.last_id
    with pytest.raises(ValueError, match="binance ETH at 5 is not a listed market"):
        board.publish(Book("binance", "ETH", 5, (), ()))


@pytest.mark.parametrize("cmd,message", [
    ({"kind": "explode"}, "kind 'explode' unknown"),
    ({"kind": "stall", "venue": "kraken", "seconds": 1}, "venue 'kraken' unknown"),
    ({"kind": "stall", "venue": "upbit"}, "seconds=None must be a number"),
    ({"kind": "gap", "venue": "upbit"}, "Upbit sends whole books"),
    ({"kind": "http_error", "status": 429}, "exactly one of count"),
    ({"kind": "http_error", "status": 200, "count": 1}, "status=200 must be a number in \\[400, 599\\]"),
    ({"kind": "http_error", "status": 502, "count": 1, "after": "yes"}, "after='yes' must be true or false"),
    ({"kind": "clock"}, "offset_ms=None must be a number"),
])
def test_bad_fault_commands_name_the_problem(cmd: dict, message: str) -> None:
    with pytest.raises(BadFault, match=message):
        Faults().apply(cmd)


def test_fraction_faults_hit_about_that_share_of_requests() -> None:
    faults = Faults()
    faults.apply({"kind": "http_error", "venue": "binance", "status": 500, "fraction": 0.25})
    hits = sum(faults.http_error("binance") is not None for _ in range(2000))
    assert 400 < hits < 600 and faults.http_error("upbit") is None


def test_replayer_steps_advances_and_refuses_time_travel() -> None:
    seen: list[Book] = []
    rep = Replayer([BOOK_A, BOOK_B], seen.append)
    assert rep.advance_to(1050) == 1 and seen == [BOOK_A]
    assert rep.step() is BOOK_B and rep.step() is None
    backwards = Replayer([BOOK_B, BOOK_A], seen.append)
    backwards.step()
    with pytest.raises(ValueError, match="older than the previous one at 1100"):
        backwards.step()


def test_loader_names_file_and_row_of_a_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "books.jsonl"
    bad.write_text('{"timestamp": "2025-08-24T06:03:18", "exchange": "upbit", "symbol": "BTC/KRW"}\n')
    with pytest.raises(ValueError, match=r"books.jsonl:1: not a recorded book line"):
        load_jsonl_books(bad)


def test_control_endpoint_faults_steps_and_journal(data: Path, tmp_path: Path) -> None:
    log = tmp_path / "journal.jsonl"

    async def scenario() -> None:
        async with running_sim(data, journal_path=log) as sim, aiohttp.ClientSession() as http:
            control = sim.urls()["control"]
            async with http.post(f"{control}/fault", json={"kind": "latency", "venue": "upbit", "ms": "x"}) as r:
                assert r.status == 400 and "ms='x'" in (await r.json())["error"]
            async with http.post(f"{control}/fault", data="nope") as r:
                assert r.status == 400 and "not JSON" in (await r.json())["error"]
            async with http.post(f"{control}/step") as r:
                assert (await r.json())["published"]["venue"] == "upbit"
            last = recorded_books(data)[-1].ts_ms
            async with http.post(f"{control}/advance", json={"ts_ms": last}) as r:
                assert (await r.json())["published"] == 13
            async with http.post(f"{control}/fault", json={"kind": "http_error", "venue": "binance",
                                                           "status": 502, "count": 1}) as r:
                assert (await r.json())["ok"] is True
            async with http.get(sim.urls()["binance"]["rest"] + "/api/v3/time") as r:
                assert r.status == 502
            async with http.get(f"{control}/journal", params={"kind": "fault"}) as r:
                assert [e["status"] for e in await r.json()] == [502]
            async with http.get(f"{control}/status") as r:
                status = await r.json()
                assert status["published"] == 14 and status["markets"]["upbit"] == ["BTC"]
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        assert {e["kind"] for e in lines} == {"balance", "fault"} and len(lines) == len(sim.journal())
    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_sim_thread_serves_synchronous_ccxt(data: Path) -> None:
    with SimThread(recorded_books(data)) as sim:
        book = sim.step()
        ex = ccxt.upbit(ccxt_overrides(sim.urls(), "upbit"))
        ob = ex.fetch_order_book("BTC/KRW")
        assert ob["bids"][0][:2] == list(book.bids[0]) and sim.journal("order") == []
        assert sim.fault({"kind": "disconnect"})["closed"] == 0


def test_cli_prints_urls_and_serves_a_parquet_recording(data: Path, tmp_path: Path) -> None:
    from marketdata.parquet_books import write_books
    path = tmp_path / "books.parquet"
    write_books(path, recorded_books(data), source="test: 2025-08-24 20-level books", synthetic=False)
    proc = subprocess.Popen([sys.executable, "-m", "sim", "--books", str(path), "--port", "0", "--speed", "0",
                             "--key", "k:s"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        urls = json.loads(proc.stdout.readline())
        assert urls["upbit"]["rest"].startswith("http://127.0.0.1:")
        markets = ccxt.binance(ccxt_overrides(urls, "binance")).load_markets()
        assert "BTC/USDT" in markets
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, proc.stderr.read()


def test_cli_names_a_missing_books_file(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "sim", "--books", str(tmp_path / "none.parquet")], cwd=REPO,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "none.parquet does not exist" in done.stderr
